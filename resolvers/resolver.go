// Package resolvers implements the Amas GraphQL schema (schema/*.graphqls). The
// resolvers are thin: they check arguments, call the store, auth and live
// packages through the small interfaces below, and map the results.
//
// Files: resolver.go (this one: dependencies), *.resolvers.go (one per schema file,
// bodies kept by gqlgen on regenerate), helpers next to them. graph/ is generated.
package resolvers

//go:generate go -C .. tool gqlgen generate

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/store"
)

// SeriesQuerier runs series queries (store.Store).
type SeriesQuerier interface {
	QuerySeries(ctx context.Context, q store.SeriesQuery) ([]store.Series, error)
}

// MetricNames lists metric names, tag keys and tag values (store.Store).
type MetricNames interface {
	Metrics(ctx context.Context, match string, limit int) ([]string, error)
	TagKeys(ctx context.Context, metric string) ([]string, error)
	TagValues(ctx context.Context, metric, key, match string) ([]string, error)
}

// MetricCatalog reads and edits the metric catalogue (store.Store).
type MetricCatalog interface {
	MetricInfo(ctx context.Context, metric string) (store.MetricInfo, error)
	MetricCatalog(ctx context.Context, match string, limit, offset int) ([]store.MetricInfo, int, error)
	UpdateMetricMeta(ctx context.Context, metric, description, unit string) (store.MetricInfo, error)
}

// StatsReader gives the database-wide figures of the overview (store.Store).
type StatsReader interface {
	Stats(ctx context.Context) (store.StoreStats, error)
}

// AgentLister lists the agents that sent heartbeats (store.Store).
type AgentLister interface {
	Agents(ctx context.Context) ([]store.Agent, error)
}

// Sessions signs users in and out (auth.Service).
type Sessions interface {
	Login(ctx context.Context, username, password, remoteAddr string) (string, auth.Principal, error)
	Logout(ctx context.Context, sessionToken string) error
}

// SessionCookies writes the session cookie of a login or logout reply, and reads
// it back from a request (auth.Service).
type SessionCookies interface {
	SetSessionCookie(w http.ResponseWriter, token string)
	ClearSessionCookie(w http.ResponseWriter)
	SessionToken(r *http.Request) string
}

// LiveSeries keeps series queries current (live.Hub).
type LiveSeries interface {
	Subscribe(ctx context.Context, q store.SeriesQuery) (<-chan []store.Series, error)
}

// Config holds the resolvers' dependencies. All are required except Log
// (discarded when nil), IngestRate (zero when nil) and Now (time.Now when nil).
type Config struct {
	Series  SeriesQuerier
	Names   MetricNames
	Catalog MetricCatalog
	Stats   StatsReader
	Live    LiveSeries
	Agents  AgentLister
	// Traces and LiveSpans serve the trace fields (traces_*.go).
	Traces    TraceReader
	LiveSpans LiveSpanSource
	// Notify serves the notification fields (alert_notify*.go).
	Notify NotifyDeps
	// AlertRules serves the rule, alert and alert history fields (alert_rules*.go).
	AlertRules RuleDeps
	// Overview serves the overview page's fields (overview*.go).
	Overview OverviewFigures

	Sessions Sessions
	Cookies  SessionCookies

	// IngestRate reports the samples per second this process's write pipeline
	// commits; nil on replicas without the ingest role.
	IngestRate func() float64
	// MaxPoints bounds the points of one series field; zero means
	// store.DefaultMaxPoints.
	MaxPoints int
	// Now is the clock that decides whether an agent is up.
	Now func() time.Time

	Log *slog.Logger
}

// Resolver is the root of the resolvers; gqlgen's generated code calls its methods.
type Resolver struct {
	cfg Config
	log *slog.Logger
}

// New returns the root resolver.
func New(cfg Config) *Resolver {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.IngestRate == nil {
		cfg.IngestRate = func() float64 { return 0 }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxPoints <= 0 {
		cfg.MaxPoints = store.DefaultMaxPoints
	}
	return &Resolver{cfg: cfg, log: log.With("component", "graphql")}
}
