// Package api serves the Amas GraphQL API over HTTP: POST and GET at /graphql,
// subscriptions over a websocket on the same path, and the GraphiQL page at
// /graphiql. It authenticates every request, enforces the schema's @public and
// @auth(role:) directives, and bounds each operation's complexity and time.
package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/graph"
	"github.com/amas-eye/amas/resolvers"
)

// Config holds the handler's dependencies and limits.
type Config struct {
	// Resolvers are the resolvers' dependencies. Sessions and Cookies may be left
	// nil: Auth provides them.
	Resolvers resolvers.Config
	// Auth authenticates requests and websocket connections; required.
	Auth *auth.Service
	// QueryTimeout bounds one query or mutation (not a subscription's life);
	// zero means no bound.
	QueryTimeout time.Duration
	// MaxComplexity bounds the complexity of one operation (see complexity.go);
	// zero means no bound.
	MaxComplexity int
	// Log receives internal errors (with the request id the client was shown)
	// and websocket failures; nil discards them.
	Log *slog.Logger
}

const (
	// keepAlive is how often an idle websocket is pinged, so that proxies do not
	// close it and a vanished client is noticed.
	keepAlive = 15 * time.Second
	// initTimeout is how long a websocket may wait before connection_init.
	initTimeout = 10 * time.Second
	// queryCacheSize is how many parsed query documents are kept.
	queryCacheSize = 1000
)

// NewHandler returns the handler of /graphql and /graphiql.
func NewHandler(cfg Config) http.Handler {
	base := cfg.Log
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	log := base.With("component", "api")
	rc := cfg.Resolvers
	if rc.Sessions == nil {
		rc.Sessions = cfg.Auth
	}
	if rc.Cookies == nil {
		rc.Cookies = cfg.Auth
	}
	if rc.Log == nil {
		rc.Log = base
	}
	root := resolvers.New(rc)
	schema := graph.NewExecutableSchema(graph.Config{
		Resolvers:  root,
		Complexity: complexity(),
	})

	srv := handler.New(schema)
	srv.AddTransport(transport.Websocket{
		InitFunc:              websocketInit(cfg.Auth),
		InitTimeout:           initTimeout,
		KeepAlivePingInterval: keepAlive, // graphql-ws
		PingPongInterval:      keepAlive, // graphql-transport-ws
		ErrorFunc:             websocketError(log),
	})
	srv.AddTransport(transport.Options{})
	// GET runs queries only; gqlgen refuses mutations over it, which keeps
	// them out of reach of cross-site links (see auth.CheckCSRF).
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheSize))
	// GraphiQL and the SPA's tooling need introspection; the schema is no secret.
	srv.Use(extension.Introspection{})
	if cfg.MaxComplexity > 0 {
		srv.Use(extension.FixedComplexityLimit(cfg.MaxComplexity))
	}
	srv.AroundOperations(withOperationScope(root))
	srv.AroundResponses(withTimeout(cfg.QueryTimeout))
	srv.AroundFields(newAccessRules(schema.Schema()).check)
	srv.SetErrorPresenter(presentError(log))
	srv.SetRecoverFunc(recoverPanic(log))

	mux := http.NewServeMux()
	mux.Handle("/graphql", authenticate(cfg.Auth, withExchange(sameOriginWebsocket(srv))))
	mux.Handle("GET /graphiql", graphiql())
	return mux
}

// authenticate puts the caller in the request's context with auth.Middleware,
// unless a Middleware in front of this handler already found one.
func authenticate(a *auth.Service, next http.Handler) http.Handler {
	withCaller := a.Middleware(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := auth.FromContext(r.Context()); ok {
			next.ServeHTTP(w, r)
			return
		}
		withCaller.ServeHTTP(w, r)
	})
}

// sameOriginWebsocket refuses a websocket upgrade sent from a page on another
// site: the browser attaches the session cookie to it, so accepting it would
// let that page act as the signed-in user (cross-site websocket hijacking). The
// websocket library checks Origin too, but answers with a bare 403 and a log
// line on the standard logger.
func sameOriginWebsocket(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			if err := auth.CheckCSRF(r); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// withExchange hands the resolvers the HTTP exchange of plain requests, for the
// session cookie. A websocket's upgrade request gets none: its operations cannot
// set cookies.
func withExchange(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			r = r.WithContext(resolvers.WithHTTP(r.Context(), w, r))
		}
		next.ServeHTTP(w, r)
	})
}
