package auth

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Sentinels callers branch on with errors.Is. The errors this package returns
// often carry a more specific message (which token, why the session ended) but
// still match one of these.
var (
	// ErrUnauthenticated: no credentials, or credentials that identify no one.
	ErrUnauthenticated = errors.New(`not signed in: sign in, or send an API token as "Authorization: Bearer <token>"`)
	// ErrForbidden: the caller is known but may not do this, or the request
	// came from another site.
	ErrForbidden = errors.New("your role does not allow this")
	// ErrBadCredentials: a sign-in with an unknown username or a wrong
	// password; the two are deliberately indistinguishable.
	ErrBadCredentials = errors.New("wrong username or password")
	// ErrThrottled: too many failed sign-ins; the error is a *ThrottledError
	// that says when to retry.
	ErrThrottled = errors.New("too many failed sign-in attempts")
	// ErrInvalid: input the user can correct (a short password, a taken name);
	// the message is meant to be shown to them.
	ErrInvalid = errors.New("invalid input")
)

// refusal reads as its own message but matches kind with errors.Is, so a
// message can be specific while callers still branch on the sentinel.
type refusal struct {
	kind error
	msg  string
}

func (e *refusal) Error() string        { return e.msg }
func (e *refusal) Is(target error) bool { return target == e.kind }

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// ThrottledError is returned by Login while the username or the remote address
// is locked out; it matches ErrThrottled.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-in attempts; try again in %s", time.Duration(e.seconds())*time.Second)
}

// seconds is RetryAfter rounded up, as a Retry-After header wants it.
func (e *ThrottledError) seconds() int { return int(math.Ceil(e.RetryAfter.Seconds())) }

func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }
