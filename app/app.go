// Package app assembles `amas serve` from its parts, so that main stays a thin
// flag parser and tests can start the whole server in-process on port 0.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/amas-eye/amas/api"
	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/config"
	"github.com/amas-eye/amas/ingest"
	"github.com/amas-eye/amas/ingest/opentsdb"
	"github.com/amas-eye/amas/internal/secretkey"
	"github.com/amas-eye/amas/live"
	"github.com/amas-eye/amas/resolvers"
	"github.com/amas-eye/amas/rollup"
)

// Version is the build's version, set by the linker.
var Version = "dev"

// Bootstrap holds the credentials created on a database's first start, to be
// shown to the operator once.
type Bootstrap struct {
	AdminUser, AdminPassword, IngestToken string
}

// App is a running `amas serve`.
type App struct {
	cfg *config.Server
	log *slog.Logger
	db  *Database
	reg *prometheus.Registry

	auth     *auth.Service
	pipeline *ingest.Pipeline
	hub      *live.Hub // api role: live subscriptions
	otlp     otlpParts // traces and OTLP (otlp.go)
	alerting alertingParts

	httpLn net.Listener
	http   *http.Server
	putLn  net.Listener

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	stopOnce  sync.Once
	stopErr   error
	Bootstrap *Bootstrap // non-nil on the first start of a fresh database
}

// New opens the database (starting the embedded one if needed), applies
// migrations unless told not to, and builds every part the configured roles need.
// Nothing listens until Start.
func New(ctx context.Context, cfg *config.Server, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db, err := OpenDatabase(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, db: db, reg: prometheus.NewRegistry()}
	if err := a.init(ctx); err != nil {
		db.Close(ctx)
		return nil, err
	}
	return a, nil
}

func (a *App) init(ctx context.Context) error {
	if !a.cfg.NoMigrate {
		n, err := a.db.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if n > 0 {
			a.log.Info("applied migrations", "count", n)
		}
	}
	if err := a.initSecretKey(ctx); err != nil {
		return err
	}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.auth = auth.NewService(a.db.Store, auth.Options{SessionTTL: a.cfg.SessionTTL, CookieSecure: a.cfg.CookieSecure}, a.log)
	created, user, password, token, err := a.auth.EnsureAdmin(ctx)
	if err != nil {
		return fmt.Errorf("create the first admin: %w", err)
	}
	if created {
		a.Bootstrap = &Bootstrap{AdminUser: user, AdminPassword: password, IngestToken: token}
	}
	if a.cfg.HasRole("api") {
		st := a.db.Store
		a.hub = live.New(live.PoolConnector(st.Pool()), st, a.log.With("component", "live"), live.Options{})
	}
	if a.cfg.HasRole("ingest") {
		a.reg.MustRegister(opentsdb.RejectedPoints)
		a.pipeline = ingest.NewPipeline(a.db.Store, ingest.Config{
			QueueSize: a.cfg.QueueSize, BatchSize: a.cfg.BatchSize, Writers: a.cfg.Writers,
		}, a.log.With("component", "ingest"), a.reg)
	}
	a.initOTLP()
	a.initAlerting()
	return nil
}

// initSecretKey gives the store the keys of --secret-key-file and
// --previous-secret-key-files, and seals with the current key the channel
// secrets stored plain or with a previous key; without a key it says how many
// are plain.
func (a *App) initSecretKey(ctx context.Context) error {
	if a.cfg.SecretKeyFile == "" {
		plain, sealedBy, err := a.db.Store.SecretsAtRest(ctx)
		if err != nil {
			return err
		}
		if plain > 0 {
			a.log.Warn("notification channel secrets are stored unsealed: set --secret-key-file to seal them", "channels", plain)
		}
		if len(sealedBy) > 0 {
			a.log.Warn("notification channels are sealed and this server has no --secret-key-file: they cannot send",
				"channels_by_key", sealedBy)
		}
		return nil
	}
	key, err := secretkey.Load(a.cfg.SecretKeyFile)
	if err != nil {
		return fmt.Errorf("--secret-key-file: %w", err)
	}
	previous := make([]*secretkey.Key, len(a.cfg.PreviousSecretKeyFiles))
	for i, path := range a.cfg.PreviousSecretKeyFiles {
		if previous[i], err = secretkey.Load(path); err != nil {
			return fmt.Errorf("--previous-secret-key-files: %w", err)
		}
	}
	a.db.Store.UseSecretKeys(key, previous...)
	rep, err := a.db.Store.SealSecrets(ctx)
	if err != nil {
		return err
	}
	if rep.Sealed+rep.Resealed > 0 {
		a.log.Info("sealed notification channel secrets with the current key", "key", key.ID(),
			"were_plain", rep.Sealed, "were_sealed_with_a_previous_key", rep.Resealed)
	}
	for _, u := range rep.Unreadable {
		a.log.Warn("notification channel sealed with a key this server does not have: it cannot send",
			"channel", u.Name, "sealed_with", u.Key, "key", key.ID())
	}
	return nil
}

func (a *App) limits() ingest.Limits {
	l := ingest.DefaultLimits
	l.MaxTagsPerPoint = a.cfg.MaxTagsPerPoint
	return l
}

// Start opens the listeners and starts the roles' workers.
func (a *App) Start(ctx context.Context) error {
	ctx, a.cancel = context.WithCancel(ctx)
	var err error
	if a.httpLn, err = net.Listen("tcp", a.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	a.http = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	a.goRun("http", func() error {
		if err := a.http.Serve(a.httpLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if a.pipeline != nil {
		a.pipeline.Start()
		if a.cfg.PutAddr != "" {
			if a.putLn, err = net.Listen("tcp", a.cfg.PutAddr); err != nil {
				return fmt.Errorf("--put-addr: %w", err)
			}
			tcp := opentsdb.NewTCPServer(opentsdb.TCPConfig{
				TrustedCIDRs: a.cfg.PutTrustedCIDRs,
				MaxLineBytes: a.cfg.MaxLineBytes,
				Limits:       a.limits(),
				Version:      "amas " + Version,
			}, a.pipeline, a.auth.CheckToken, a.log.With("component", "put"), a.reg)
			a.goRun("put", func() error { return tcp.Serve(ctx, a.putLn) })
		}
	}
	if err := a.startOTLP(ctx); err != nil {
		return err
	}
	if a.hub != nil {
		a.goRun("live", func() error { return a.hub.Run(ctx) })
	}
	if a.cfg.HasRole("rollup") {
		w := rollup.New(a.db.Store, rollup.Config{
			RetentionRaw: a.cfg.RetentionRaw, Retention1m: a.cfg.Retention1m, Retention1h: a.cfg.Retention1h,
			RetentionSpans: a.cfg.RetentionSpans,
		}, a.log.With("component", "rollup"), a.reg)
		a.goRun("rollup", func() error { return w.Run(ctx) })
	}
	if a.cfg.HasRole("ml") && len(a.cfg.Roles) == 1 {
		// Say so rather than idle silently: the role is reserved in --roles.
		a.log.Warn("the ml role has no worker in this version: this process does nothing; anomaly rules read amas.anomaly.score series written through ingest")
	}
	a.startAlerting(ctx)
	if a.cfg.HasRole("alert") {
		d := a.newDispatcher()
		a.goRun("dispatch", func() error { return d.Run(ctx) })
	}
	return nil
}

// goRun runs a role's loop; a role that fails is logged, it does not stop the others.
func (a *App) goRun(name string, run func() error) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := run(); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("role stopped", "role", name, "err", err)
		}
	}()
}

// HTTPAddr is the address the HTTP listener is bound to.
func (a *App) HTTPAddr() string { return a.httpLn.Addr().String() }

// PutAddr is the address of the telnet put listener, empty when disabled.
func (a *App) PutAddr() string {
	if a.putLn == nil {
		return ""
	}
	return a.putLn.Addr().String()
}

// Store is the database handle, for tests and the CLI.
func (a *App) Store() *Database { return a.db }

// Stop shuts down in reverse start order: listeners stop taking new work, the
// ingest queue is flushed to the database, then the database is closed. Only the
// first call does anything.
func (a *App) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() { a.stopErr = a.stop(ctx) })
	return a.stopErr
}

func (a *App) stop(ctx context.Context) error {
	var errs []error
	if a.http != nil {
		if err := a.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	errs = append(errs, a.stopOTLP(ctx)...)
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.pipeline != nil {
		if err := a.pipeline.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	a.db.Close(ctx)
	return errors.Join(errs...)
}

func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	if a.hub != nil {
		gql := a.graphQL()
		mux.Handle("/graphql", gql)
		mux.Handle("GET /graphiql", gql)
		// The web app comes with the frontend; until then / opens the playground.
		mux.Handle("GET /{$}", http.RedirectHandler("/graphiql", http.StatusFound))
	}
	if a.pipeline != nil {
		put := opentsdb.NewHTTPHandler(a.pipeline, a.limits(), a.cfg.MaxBodyBytes, a.log.With("component", "api/put"))
		mux.Handle("/api/put", a.auth.RequireWrite(put))
		heartbeat := ingest.NewHeartbeatHandler(a.db.Store, time.Now, a.log.With("component", "agents"))
		mux.Handle(ingest.HeartbeatPath, a.auth.RequireWrite(heartbeat))
	}
	return a.auth.Middleware(mux)
}

func (a *App) graphQL() http.Handler {
	st := a.db.Store
	var ingestRate func() float64
	if a.pipeline != nil {
		ingestRate = a.pipeline.Rate
	}
	return api.NewHandler(api.Config{
		Auth: a.auth, QueryTimeout: a.cfg.QueryTimeout, MaxComplexity: a.cfg.MaxComplexity,
		Log: a.log,
		Resolvers: resolvers.Config{
			Series: st, Names: st, Catalog: st, Stats: st, Agents: st, Live: a.hub,
			MaxPoints: a.cfg.MaxPoints, IngestRate: ingestRate,
			Traces: st, LiveSpans: a.otlp.hub,
			Notify:   a.notifyResolvers(),
			Overview: st,

			AlertRules: a.ruleResolvers(), // alerting.go
		},
	})
}

// ready answers 200 when the database answers and the schema is migrated.
func (a *App) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var pending bool
	err := a.db.Store.Pool().QueryRow(ctx, `SELECT to_regclass('public.samples') IS NULL`).Scan(&pending)
	switch {
	case err != nil:
		http.Error(w, "database unreachable: "+err.Error(), http.StatusServiceUnavailable)
	case pending:
		http.Error(w, "database not migrated: run amas migrate up", http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ok\n"))
	}
}
