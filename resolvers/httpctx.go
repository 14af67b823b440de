package resolvers

import (
	"context"
	"net/http"
)

// exchange is the HTTP request of an operation and the writer of its reply.
type exchange struct {
	w http.ResponseWriter
	r *http.Request
}

type exchangeKey struct{}

// WithHTTP records the HTTP exchange an operation arrived in, so that login and
// logout can read and set the session cookie. The api package calls it for every
// operation sent over plain HTTP; websocket operations have none.
func WithHTTP(ctx context.Context, w http.ResponseWriter, r *http.Request) context.Context {
	return context.WithValue(ctx, exchangeKey{}, exchange{w: w, r: r})
}

func httpFrom(ctx context.Context) (exchange, bool) {
	ex, ok := ctx.Value(exchangeKey{}).(exchange)
	return ex, ok
}
