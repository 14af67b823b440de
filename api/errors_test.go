package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/resolvers/scalar"
	"github.com/amas-eye/amas/store"
)

func TestPresentError(t *testing.T) {
	timedOut, cancel := context.WithTimeoutCause(context.Background(), 0, &timeoutError{limit: 30 * time.Second})
	defer cancel()
	<-timedOut.Done()

	tests := []struct {
		name    string
		ctx     context.Context
		err     error
		code    string
		message string // exact text shown; empty: the error's own
		logged  bool
	}{
		{"input", context.Background(), scalar.Inputf("invalid Time %q", "x"), CodeBadUserInput, "", false},
		{"bad query", context.Background(), fmt.Errorf("%w: from must be before to", store.ErrBadQuery), CodeBadUserInput, "", false},
		{"auth input", context.Background(), fmt.Errorf("%w: name taken", auth.ErrInvalid), CodeBadUserInput, "", false},
		{"not signed in", context.Background(), auth.ErrUnauthenticated, CodeUnauthenticated, "", false},
		{"wrong password", context.Background(), auth.ErrBadCredentials, CodeUnauthenticated, "", false},
		{"forbidden", context.Background(), auth.ErrForbidden, CodeForbidden, "", false},
		{"throttled", context.Background(), &auth.ThrottledError{RetryAfter: 1500 * time.Millisecond}, CodeTooManyRequests, "", false},
		{"timeout", timedOut, fmt.Errorf("query series: %w", context.DeadlineExceeded), CodeTimeout,
			"the operation ran longer than the limit of 30s: narrow the time range, filter the series or choose a coarser step", false},
		{"internal", context.WithValue(context.Background(), requestIDKey{}, "abc123"), errors.New("connection refused by 10.0.0.9"),
			CodeInternal, "internal server error (request id abc123): the server log has the details", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			present := presentError(slog.New(slog.NewTextHandler(&logs, nil)))
			got := present(tt.ctx, tt.err)
			if code := got.Extensions["code"]; code != tt.code {
				t.Errorf("code = %v, want %s", code, tt.code)
			}
			want := tt.message
			if want == "" {
				want = tt.err.Error()
			}
			if got.Message != want {
				t.Errorf("message = %q, want %q", got.Message, want)
			}
			if logged := logs.Len() > 0; logged != tt.logged {
				t.Errorf("logged = %v (%q), want %v", logged, logs.String(), tt.logged)
			}
			if tt.logged && !strings.Contains(logs.String(), "request_id=abc123") {
				t.Errorf("log %q lacks the request id", logs.String())
			}
		})
	}
}

func TestPresentErrorKeepsGraphQLErrors(t *testing.T) {
	err := gqlerror.Errorf("Cannot query field \"nope\" on type \"Query\".")
	err.Extensions = map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}
	got := presentError(slog.New(slog.DiscardHandler))(context.Background(), err)
	if got.Message != err.Message || got.Extensions["code"] != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("presented %+v", got)
	}
}

func TestThrottledCarriesRetryAfter(t *testing.T) {
	got := presentError(slog.New(slog.DiscardHandler))(context.Background(), &auth.ThrottledError{RetryAfter: 1500 * time.Millisecond})
	if got.Extensions["retryAfterSeconds"] != 2 {
		t.Fatalf("extensions = %v, want retryAfterSeconds 2", got.Extensions)
	}
}
