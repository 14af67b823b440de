package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/amas-eye/amas/resolvers"
)

type requestIDKey struct{}

// withOperationScope gives each operation an id, which internal errors show the
// client and log, and the resolvers' per-operation scope (point budget, memo).
func withOperationScope(root *resolvers.Resolver) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		var b [8]byte
		_, _ = rand.Read(b[:])
		ctx = context.WithValue(ctx, requestIDKey{}, hex.EncodeToString(b[:]))
		return next(root.WithOperationScope(ctx))
	}
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withTimeout bounds the execution of queries and mutations. Subscriptions are
// left alone: they live as long as the client wants, and each of their updates
// is bounded by the live hub's own queries.
func withTimeout(timeout time.Duration) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		oc := graphql.GetOperationContext(ctx)
		if timeout <= 0 || oc.Operation == nil || oc.Operation.Operation == ast.Subscription {
			return next(ctx)
		}
		ctx, cancel := context.WithTimeoutCause(ctx, timeout, &timeoutError{limit: timeout})
		defer cancel()
		return next(ctx)
	}
}
