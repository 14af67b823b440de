package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/amas-eye/amas/store"
	"github.com/amas-eye/amas/store/storetest"
)

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestUserCreateAndLookup(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	alice, err := st.CreateUser(ctx, store.NewUser{Username: "alice", PasswordHash: "h1", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, store.NewUser{Username: "bob", PasswordHash: "h2", Role: "viewer"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		lookup  func() (store.User, error)
		want    string
		wantErr error
	}{
		{"by username", func() (store.User, error) { return st.UserByUsername(ctx, "alice") }, "alice", nil},
		{"by id", func() (store.User, error) { return st.UserByID(ctx, alice.ID) }, "alice", nil},
		{"unknown username", func() (store.User, error) { return st.UserByUsername(ctx, "carol") }, "", store.ErrNotFound},
		{"unknown id", func() (store.User, error) { return st.UserByID(ctx, alice.ID+100) }, "", store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.lookup()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if u.Username != tc.want {
				t.Errorf("username = %q, want %q", u.Username, tc.want)
			}
		})
	}
	_, err = st.CreateUser(ctx, store.NewUser{Username: "alice", PasswordHash: "x", Role: "viewer"})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate username: err = %v, want ErrConflict", err)
	}
	users, err := st.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Username != "alice" || users[1].Username != "bob" || users[1].Role != "viewer" {
		t.Errorf("Users = %+v, want alice then bob", users)
	}
}

func TestUserSetPasswordEndsSessions(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	now := time.Now()
	u, err := st.CreateUser(ctx, store.NewUser{Username: "alice", PasswordHash: "old", Role: "editor"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, hashOf("s1"), u.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPasswordHash(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
	got, err := st.UserByUsername(ctx, "alice")
	if err != nil || got.PasswordHash != "new" {
		t.Fatalf("after SetPasswordHash: %+v, %v", got, err)
	}
	if _, err := st.SessionUser(ctx, hashOf("s1"), now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session after password change: err = %v, want ErrNotFound", err)
	}
	if err := st.SetPasswordHash(ctx, "nobody", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}
}

func TestSessionLifecycle(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	u, err := st.CreateUser(ctx, store.NewUser{Username: "alice", PasswordHash: "h", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, hashOf("live"), u.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, hashOf("old"), u.ID, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		id      string
		at      time.Time
		wantErr error
	}{
		{"live session", "live", now, nil},
		{"expired session", "old", now, store.ErrNotFound},
		{"live session after its expiry", "live", now.Add(time.Hour), store.ErrNotFound},
		{"unknown session", "other", now, store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.SessionUser(ctx, hashOf(tc.id), tc.at)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && (got.ID != u.ID || got.Role != "viewer") {
				t.Errorf("user = %+v, want alice", got)
			}
		})
	}
	n, err := st.DeleteExpiredSessions(ctx, now)
	if err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
	if err := st.DeleteSession(ctx, hashOf("live")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SessionUser(ctx, hashOf("live"), now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session: err = %v, want ErrNotFound", err)
	}
}

func TestTokenLifecycle(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	ingest, err := st.CreateToken(ctx, store.NewToken{Name: "ingest", Role: "ingest", Hash: hashOf("a")})
	if err != nil {
		t.Fatal(err)
	}
	// A token whose name is another token's id: revoking by that string must
	// pick the name.
	byName := strconv.FormatInt(ingest.ID, 10)
	numeric, err := st.CreateToken(ctx, store.NewToken{Name: byName, Role: "viewer", Hash: hashOf("b")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateToken(ctx, store.NewToken{Name: "ingest", Role: "ingest", Hash: hashOf("c")}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate name: err = %v, want ErrConflict", err)
	}
	got, err := st.ActiveToken(ctx, hashOf("a"))
	if err != nil || got.ID != ingest.ID || got.Role != "ingest" {
		t.Fatalf("ActiveToken = %+v, %v", got, err)
	}
	revoked, err := st.RevokeToken(ctx, byName)
	if err != nil || revoked.ID != numeric.ID {
		t.Fatalf("RevokeToken(%q) = %+v, %v; want the token named %q", byName, revoked, err, byName)
	}
	if _, err := st.ActiveToken(ctx, hashOf("a")); err != nil {
		t.Errorf("token %d revoked by another token's name: %v", ingest.ID, err)
	}
	if _, err := st.ActiveToken(ctx, hashOf("b")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoked token: err = %v, want ErrNotFound", err)
	}
	if _, err := st.RevokeToken(ctx, strconv.FormatInt(numeric.ID, 10)); err != nil {
		t.Errorf("revoke by id: %v", err)
	}
	if _, err := st.RevokeToken(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown: err = %v, want ErrNotFound", err)
	}
	tokens, err := st.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 2 || tokens[1].Name != "ingest" || tokens[1].RevokedAt != nil || tokens[0].RevokedAt == nil {
		t.Errorf("Tokens = %+v", tokens)
	}
}

func TestTokenTouchAtMostOncePerInterval(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	tok, err := st.CreateToken(ctx, store.NewToken{Name: "t", Role: "ingest", Hash: hashOf("t")})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"first use is recorded", t0, t0},
		{"a use within the interval is not", t0.Add(30 * time.Second), t0},
		{"a use after the interval is", t0.Add(store.TokenTouchInterval), t0.Add(store.TokenTouchInterval)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.TouchToken(ctx, tok.ID, tc.at); err != nil {
				t.Fatal(err)
			}
			got, err := st.ActiveToken(ctx, hashOf("t"))
			if err != nil {
				t.Fatal(err)
			}
			if got.LastUsedAt == nil || !got.LastUsedAt.Equal(tc.want) {
				t.Errorf("last_used_at = %v, want %v", got.LastUsedAt, tc.want)
			}
		})
	}
}

func TestAccountFirstAdminOnlyOnce(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	admin := store.NewUser{Username: "admin", PasswordHash: "h", Role: "admin"}
	for i, want := range []bool{true, false} {
		tok := store.NewToken{Name: "ingest-" + strconv.Itoa(i), Role: "ingest", Hash: hashOf(strconv.Itoa(i))}
		created, err := st.CreateFirstAdmin(ctx, admin, tok)
		if err != nil || created != want {
			t.Fatalf("call %d: created = %v, %v; want %v", i, created, err, want)
		}
	}
	tokens, err := st.Tokens(ctx)
	if err != nil || len(tokens) != 1 {
		t.Errorf("tokens = %+v, %v; want only the first call's", tokens, err)
	}
}

func TestAccountFirstAdminTokenNameTaken(t *testing.T) {
	st, _ := storetest.Migrated(t)
	ctx := context.Background()
	tok := store.NewToken{Name: "default-ingest", Role: "ingest", Hash: hashOf("x")}
	if _, err := st.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	tok.Hash = hashOf("y")
	_, err := st.CreateFirstAdmin(ctx, store.NewUser{Username: "admin", PasswordHash: "h", Role: "admin"}, tok)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if users, _ := st.Users(ctx); len(users) != 0 {
		t.Errorf("users = %+v, want none: the transaction must roll back", users)
	}
}
