package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/resolvers/scalar"
	"github.com/amas-eye/amas/store"
)

// Codes in an error's extensions.code, for clients to branch on. gqlgen's own
// (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, COMPLEXITY_LIMIT_EXCEEDED)
// pass through as they are.
const (
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeTooManyRequests = "TOO_MANY_REQUESTS"
	CodeTimeout         = "TIMEOUT"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
)

// timeoutError is the cause of a context that hit the query timeout.
type timeoutError struct{ limit time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("the operation ran longer than the limit of %s: "+
		"narrow the time range, filter the series or choose a coarser step", e.limit)
}

// presentError shows errors the client can act on as they are, with a code, and
// hides the text of internal ones (which may name tables or hosts) behind the
// request id under which they are logged.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		cause := gqlErr.Unwrap()
		if cause == nil {
			// Made by gqlgen or the parser (syntax, validation, complexity):
			// addressed to the client already.
			return gqlErr
		}
		code, extra := classify(ctx, cause)
		switch code {
		case CodeInternal:
			id := requestID(ctx)
			log.Error("graphql operation failed", "request_id", id, "path", gqlErr.Path.String(), "err", cause)
			gqlErr.Message = fmt.Sprintf("internal server error (request id %s): the server log has the details", id)
		case CodeTimeout:
			gqlErr.Message = context.Cause(ctx).Error()
		}
		if gqlErr.Extensions == nil {
			gqlErr.Extensions = map[string]any{}
		}
		gqlErr.Extensions["code"] = code
		for k, v := range extra {
			gqlErr.Extensions[k] = v
		}
		return gqlErr
	}
}

// classify maps an error onto its code, with any extensions that go with it.
func classify(ctx context.Context, err error) (string, map[string]any) {
	var input *scalar.InputError
	var throttled *auth.ThrottledError
	var timeout *timeoutError
	switch {
	case errors.As(err, &input), errors.Is(err, store.ErrBadQuery), errors.Is(err, auth.ErrInvalid):
		return CodeBadUserInput, nil
	case errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrBadCredentials):
		return CodeUnauthenticated, nil
	case errors.Is(err, auth.ErrForbidden):
		return CodeForbidden, nil
	case errors.As(err, &throttled):
		return CodeTooManyRequests, map[string]any{"retryAfterSeconds": int(math.Ceil(throttled.RetryAfter.Seconds()))}
	case errors.As(context.Cause(ctx), &timeout):
		return CodeTimeout, nil
	}
	return CodeInternal, nil
}

// recoverPanic logs a resolver's panic with its stack; the client sees an
// internal error with the request id.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, v any) error {
		log.Error("graphql resolver panicked", "request_id", requestID(ctx), "panic", v, "stack", string(debug.Stack()))
		return fmt.Errorf("panic: %v", v)
	}
}
