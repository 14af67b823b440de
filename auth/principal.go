// Package auth decides who is calling and what they may do: password hashing,
// sessions, API tokens, login throttling, CSRF protection and role checks.
package auth

import (
	"context"
	"fmt"
)

// Role is what a user or token may do. Roles are ordered: each includes the
// rights of those before it, except that ingest can only write data.
type Role string

const (
	RoleIngest Role = "ingest"
	RoleViewer Role = "viewer"
	RoleEditor Role = "editor"
	RoleAdmin  Role = "admin"
)

// ParseRole checks that s names a role; userRole limits it to the roles a user
// account may have (all but ingest).
func ParseRole(s string, userRole bool) (Role, error) {
	switch r := Role(s); r {
	case RoleViewer, RoleEditor, RoleAdmin:
		return r, nil
	case RoleIngest:
		if !userRole {
			return r, nil
		}
		return "", fmt.Errorf("role %q is for API tokens only; users are viewer, editor or admin", s)
	}
	if userRole {
		return "", fmt.Errorf("unknown role %q: want viewer, editor or admin", s)
	}
	return "", fmt.Errorf("unknown role %q: want ingest, viewer, editor or admin", s)
}

// CanWrite reports whether the role may send data (metrics, spans, heartbeats).
func (r Role) CanWrite() bool { return r == RoleIngest || r == RoleEditor || r == RoleAdmin }

// CanRead reports whether the role may query data and configuration.
func (r Role) CanRead() bool { return r == RoleViewer || r == RoleEditor || r == RoleAdmin }

// CanEdit reports whether the role may change dashboards, rules, channels and silences.
func (r Role) CanEdit() bool { return r == RoleEditor || r == RoleAdmin }

// CanAdmin reports whether the role may manage users and tokens.
func (r Role) CanAdmin() bool { return r == RoleAdmin }

// Principal is the authenticated caller of a request: a user (by session or
// password) or an API token.
type Principal struct {
	UserID    int64  // zero for a token
	Username  string // empty for a token
	TokenID   int64  // zero for a user
	TokenName string
	Role      Role
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller stored by WithPrincipal, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
