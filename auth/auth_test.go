package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/amas-eye/amas/store/storetest"
)

// newTestService is a Service on a fresh database with a fast bcrypt and a
// clock the test moves.
func newTestService(t *testing.T, opts Options) (*Service, *time.Time) {
	t.Helper()
	st, _ := storetest.Migrated(t)
	s := NewService(st, opts, slog.New(slog.DiscardHandler))
	s.cost = bcrypt.MinCost
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	return s, &now
}

func TestPasswordsAreSaltedPerUser(t *testing.T) {
	s, _ := newTestService(t, Options{})
	ctx := t.Context()
	for _, name := range []string{"alice", "bob"} {
		if err := s.CreateUser(ctx, name, "same password", RoleViewer); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := s.st.UserByUsername(ctx, "alice")
	b, _ := s.st.UserByUsername(ctx, "bob")
	if a.PasswordHash == b.PasswordHash || !strings.HasPrefix(a.PasswordHash, "$2") {
		t.Fatalf("hashes %q and %q: want distinct bcrypt hashes", a.PasswordHash, b.PasswordHash)
	}
	if strings.Contains(a.PasswordHash, "same password") {
		t.Fatal("the password is stored in clear")
	}
}

func TestCreateUserRefusesBadInput(t *testing.T) {
	s, _ := newTestService(t, Options{})
	ctx := t.Context()
	if err := s.CreateUser(ctx, "alice", "long enough", RoleEditor); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, password, want string
	}{
		{"short password", "bob", "short", "too short"},
		{"long password", "bob", strings.Repeat("x", 73), "too long"},
		{"bad username", "bob smith", "long enough", "invalid username"},
		{"taken username", "alice", "long enough", "alice"},
	} {
		err := s.CreateUser(ctx, tc.user, tc.password, RoleViewer)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrInvalid mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestLoginSessionsAndThrottle(t *testing.T) {
	s, now := newTestService(t, Options{SessionTTL: time.Hour, Throttle: ThrottleOptions{FreeFailures: 2, BaseLockout: time.Second}})
	ctx := t.Context()
	if err := s.CreateUser(ctx, "alice", "correct horse", RoleEditor); err != nil {
		t.Fatal(err)
	}
	// Unknown user and wrong password read the same.
	_, _, errUnknown := s.Login(ctx, "mallory", "correct horse", "10.0.0.9:1")
	_, _, errWrong := s.Login(ctx, "alice", "wrong horse", "10.0.0.1:1")
	if !errors.Is(errUnknown, ErrBadCredentials) || !errors.Is(errWrong, ErrBadCredentials) || errUnknown.Error() != errWrong.Error() {
		t.Fatalf("unknown user %v, wrong password %v: want the same ErrBadCredentials", errUnknown, errWrong)
	}

	session, p, err := s.Login(ctx, "alice", "correct horse", "10.0.0.1:1")
	if err != nil || p.Username != "alice" || p.Role != RoleEditor {
		t.Fatalf("login: %+v %v", p, err)
	}
	if got, err := s.CheckSession(ctx, session); err != nil || got.Username != "alice" {
		t.Fatalf("session: %+v %v", got, err)
	}
	*now = now.Add(2 * time.Hour)
	if _, err := s.CheckSession(ctx, session); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired session: %v", err)
	}

	session, _, _ = s.Login(ctx, "alice", "correct horse", "10.0.0.1:1")
	if err := s.Logout(ctx, session); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckSession(ctx, session); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("session after logout: %v", err)
	}
	session, _, _ = s.Login(ctx, "alice", "correct horse", "10.0.0.1:1")
	if err := s.SetPassword(ctx, "alice", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckSession(ctx, session); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("session after a password change: %v", err)
	}

	// Failures past the free ones lock the username out, even with the right
	// password and from another address, until the lockout passes.
	for range 3 {
		_, _, _ = s.Login(ctx, "alice", "wrong", "10.0.0.2:1")
	}
	var throttled *ThrottledError
	if _, _, err := s.Login(ctx, "alice", "battery staple", "10.0.0.3:1"); !errors.As(err, &throttled) || throttled.RetryAfter <= 0 {
		t.Fatalf("after repeated failures: %v, want ThrottledError", err)
	}
	*now = now.Add(throttled.RetryAfter)
	if _, _, err := s.Login(ctx, "alice", "battery staple", "10.0.0.3:1"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
}

func TestTokens(t *testing.T) {
	s, _ := newTestService(t, Options{})
	ctx := t.Context()
	secret, err := s.CreateToken(ctx, "agents", RoleIngest)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CheckToken(ctx, secret)
	if err != nil || p.TokenName != "agents" || !p.Role.CanWrite() || p.Role.CanRead() {
		t.Fatalf("ingest token: %+v %v, want write-only", p, err)
	}
	if _, err := s.CheckToken(ctx, secret+"x"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := s.CreateToken(ctx, "agents", RoleViewer); !errors.Is(err, ErrInvalid) {
		t.Fatalf("duplicate token name: %v", err)
	}
	// Revocation takes effect at once on this replica, cache or not.
	if err := s.RevokeToken(ctx, "agents"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckToken(ctx, secret); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
	list, err := s.ListTokens(ctx)
	if err != nil || len(list) != 1 || list[0].RevokedAt == nil || list[0].LastUsedAt == nil {
		t.Fatalf("tokens: %+v %v, want one revoked and used", list, err)
	}
}

func TestEnsureAdminOnlyOnAnEmptyDatabase(t *testing.T) {
	s, _ := newTestService(t, Options{})
	ctx := t.Context()
	created, user, password, token, err := s.EnsureAdmin(ctx)
	if err != nil || !created || user != "admin" || len(password) < minPasswordChars || token == "" {
		t.Fatalf("first start: created=%v user=%q err=%v", created, user, err)
	}
	if _, p, err := s.Login(ctx, user, password, "127.0.0.1:1"); err != nil || p.Role != RoleAdmin {
		t.Fatalf("admin login: %+v %v", p, err)
	}
	if p, err := s.CheckToken(ctx, token); err != nil || p.Role != RoleIngest {
		t.Fatalf("first ingest token: %+v %v", p, err)
	}
	if created, _, _, _, err := s.EnsureAdmin(ctx); err != nil || created {
		t.Fatalf("second start created again: %v %v", created, err)
	}
}

func TestRequireWriteAndCSRF(t *testing.T) {
	s, _ := newTestService(t, Options{})
	ctx := t.Context()
	writer, _ := s.CreateToken(ctx, "writer", RoleIngest)
	viewer, _ := s.CreateToken(ctx, "viewer", RoleViewer)
	if err := s.CreateUser(ctx, "ed", "correct horse", RoleEditor); err != nil {
		t.Fatal(err)
	}
	session, _, _ := s.Login(ctx, "ed", "correct horse", "127.0.0.1:1")
	h := s.Middleware(s.RequireWrite(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	for _, tc := range []struct {
		name   string
		header map[string]string
		cookie bool
		status int
		body   string
	}{
		{name: "no credentials", status: 401, body: `"code":401`},
		{name: "not bearer", header: map[string]string{"Authorization": "Basic eDp5"}, status: 401, body: "Bearer"},
		{name: "ingest token", header: map[string]string{"Authorization": "Bearer " + writer}, status: 204},
		{name: "viewer token", header: map[string]string{"Authorization": "Bearer " + viewer}, status: 403, body: `"code":403`},
		{name: "cookie, same origin, JSON", cookie: true, header: map[string]string{"Origin": "http://amas.test", "Content-Type": "application/json"}, status: 204},
		{name: "cookie from another site", cookie: true, header: map[string]string{"Origin": "http://evil.test", "Content-Type": "application/json"}, status: 403, body: "cross-site"},
		{name: "cookie, Sec-Fetch-Site cross-site", cookie: true, header: map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, status: 403},
		{name: "cookie, form post", cookie: true, header: map[string]string{"Origin": "http://amas.test", "Content-Type": "application/x-www-form-urlencoded"}, status: 403, body: "application/json"},
		{name: "bearer needs no CSRF check", header: map[string]string{"Authorization": "Bearer " + writer, "Origin": "http://evil.test"}, status: 204},
	} {
		req := httptest.NewRequest(http.MethodPost, "http://amas.test/api/put", strings.NewReader("{}"))
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		if tc.cookie {
			req.AddCookie(&http.Cookie{Name: "amas_session", Value: session})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, rec.Code, rec.Body, tc.status, tc.body)
		}
		if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	s, _ := newTestService(t, Options{CookieSecure: true, SessionTTL: time.Hour})
	rec := httptest.NewRecorder()
	s.SetSessionCookie(rec, "secret")
	c := rec.Result().Cookies()[0]
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 3600 {
		t.Errorf("session cookie %+v", c)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(c)
	if s.SessionToken(req) != "secret" {
		t.Error("SessionToken does not read the cookie back")
	}
	rec = httptest.NewRecorder()
	s.ClearSessionCookie(rec)
	if c := rec.Result().Cookies()[0]; c.MaxAge >= 0 {
		t.Errorf("cleared cookie %+v still lives", c)
	}
}
