package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/amas-eye/amas/store"
)

// Options configure a Service; zero values take the defaults.
type Options struct {
	SessionTTL    time.Duration // how long a sign-in lasts; default 7 days
	CookieName    string        // session cookie; default "amas_session"
	CookieSecure  bool          // send the cookie over HTTPS only
	TokenCacheTTL time.Duration // how long a checked API token is trusted without asking the database; default 30 s
	Throttle      ThrottleOptions
}

func (o Options) withDefaults() Options {
	if o.SessionTTL <= 0 {
		o.SessionTTL = 7 * 24 * time.Hour
	}
	if o.CookieName == "" {
		o.CookieName = "amas_session"
	}
	if o.TokenCacheTTL <= 0 {
		o.TokenCacheTTL = 30 * time.Second
	}
	o.Throttle = o.Throttle.withDefaults()
	return o
}

// Service signs users in and checks the credentials of requests.
type Service struct {
	st       *store.Store
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	cost     int // bcrypt cost; tests lower it to keep the race detector fast
	tokens   *tokenCache
	throttle *throttle
	// decoyHash is compared against when a sign-in names no user, so an
	// unknown username costs as much time as a wrong password.
	decoyHash func() string
}

// NewService returns a Service on st.
func NewService(st *store.Store, opts Options, log *slog.Logger) *Service {
	opts = opts.withDefaults()
	s := &Service{
		st:       st,
		opts:     opts,
		log:      log,
		now:      time.Now,
		cost:     bcrypt.DefaultCost,
		tokens:   newTokenCache(opts.TokenCacheTTL),
		throttle: newThrottle(opts.Throttle),
	}
	s.decoyHash = sync.OnceValue(func() string {
		hash, _ := bcrypt.GenerateFromPassword([]byte(randomSecret(16)), s.cost)
		return string(hash)
	})
	return s
}

// User is an account as the API shows it: never with its password hash.
type User struct {
	ID        int64
	Username  string
	Role      Role
	CreatedAt time.Time
}

// CreateUser adds an account. Errors caused by the input match ErrInvalid.
func (s *Service) CreateUser(ctx context.Context, username, password string, role Role) error {
	if err := validateName("username", username); err != nil {
		return err
	}
	if _, err := ParseRole(string(role), true); err != nil {
		return refuse(ErrInvalid, "%s", err)
	}
	hash, err := hashPassword(password, s.cost)
	if err != nil {
		return err
	}
	_, err = s.st.CreateUser(ctx, store.NewUser{Username: username, PasswordHash: hash, Role: string(role)})
	if errors.Is(err, store.ErrConflict) {
		return refuse(ErrInvalid, "a user named %q already exists", username)
	}
	return err
}

// SetPassword changes a user's password and signs them out everywhere.
func (s *Service) SetPassword(ctx context.Context, username, password string) error {
	hash, err := hashPassword(password, s.cost)
	if err != nil {
		return err
	}
	err = s.st.SetPasswordHash(ctx, username, hash)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(ErrInvalid, "there is no user named %q", username)
	}
	return err
}

// ListUsers returns every account by username.
func (s *Service) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.st.Users(ctx)
	if err != nil {
		return nil, err
	}
	users := make([]User, len(rows))
	for i, u := range rows {
		users[i] = User{ID: u.ID, Username: u.Username, Role: Role(u.Role), CreatedAt: u.CreatedAt}
	}
	return users, nil
}

// Login checks a username and password and starts a session, returning its
// secret for the cookie. Failures are throttled per username and per remote
// address (see ThrottleOptions), in memory and per replica. An unknown user and
// a wrong password both give ErrBadCredentials after the same bcrypt work.
func (s *Service) Login(ctx context.Context, username, password, remoteAddr string) (string, Principal, error) {
	keys := loginKeys(username, remoteAddr)
	if wait := s.throttle.attempt(s.now(), keys); wait > 0 {
		s.log.Warn("sign-in refused: locked out", "user", username, "remote", remoteAddr, "retry_after", wait)
		return "", Principal{}, &ThrottledError{RetryAfter: wait}
	}
	u, err := s.verifyPassword(ctx, username, password)
	if errors.Is(err, ErrBadCredentials) {
		s.log.Info("sign-in failed", "user", username, "remote", remoteAddr)
		return "", Principal{}, err
	}
	if err != nil {
		s.throttle.settle(keys)
		return "", Principal{}, err
	}
	s.throttle.settle(keys, "user:"+username)
	session, err := s.startSession(ctx, u)
	if err != nil {
		return "", Principal{}, err
	}
	return session, userPrincipal(u), nil
}

// verifyPassword returns the user when password is theirs. A malformed or
// unknown username is compared against the decoy hash so it costs the same.
func (s *Service) verifyPassword(ctx context.Context, username, password string) (store.User, error) {
	u, found, err := s.lookupUser(ctx, username)
	if err != nil {
		return store.User{}, err
	}
	hash := u.PasswordHash
	if !found {
		hash = s.decoyHash()
	}
	ok, err := passwordMatches(hash, password)
	if err != nil {
		return store.User{}, fmt.Errorf("sign in %q: %w", username, err)
	}
	if !ok || !found {
		return store.User{}, ErrBadCredentials
	}
	return u, nil
}

// lookupUser finds username; found is false for a malformed or unknown name.
func (s *Service) lookupUser(ctx context.Context, username string) (u store.User, found bool, err error) {
	if !validName(username) {
		return store.User{}, false, nil
	}
	u, err = s.st.UserByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, nil
	}
	return u, err == nil, err
}

// startSession stores a new session for u and returns its secret. It also
// sweeps expired sessions: sign-ins are rare enough to carry that cost, which
// spares a background worker.
func (s *Service) startSession(ctx context.Context, u store.User) (string, error) {
	secret := randomSecret(32)
	hash := hashSecret(secret)
	now := s.now()
	if err := s.st.CreateSession(ctx, hash[:], u.ID, now.Add(s.opts.SessionTTL)); err != nil {
		return "", err
	}
	if _, err := s.st.DeleteExpiredSessions(ctx, now); err != nil {
		s.log.Warn("delete expired sessions", "err", err)
	}
	return secret, nil
}

// CheckSession returns the user whose session secret this is. The session
// ends SessionTTL after sign-in, at logout, or when the password changes.
func (s *Service) CheckSession(ctx context.Context, session string) (Principal, error) {
	hash := hashSecret(session)
	u, err := s.st.SessionUser(ctx, hash[:], s.now())
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, refuse(ErrUnauthenticated, "your session has expired or was ended: sign in again")
	}
	if err != nil {
		return Principal{}, err
	}
	return userPrincipal(u), nil
}

// Logout ends the session; ending an unknown or expired one is not an error.
func (s *Service) Logout(ctx context.Context, session string) error {
	hash := hashSecret(session)
	return s.st.DeleteSession(ctx, hash[:])
}

func userPrincipal(u store.User) Principal {
	return Principal{UserID: u.ID, Username: u.Username, Role: Role(u.Role)}
}

const (
	firstAdminName  = "admin"
	firstIngestName = "default-ingest"
)

// EnsureAdmin gives a database without users its first account, "admin" with a
// random password, and an ingest token named "default-ingest", and returns
// them so they can be shown once. On a database with users it does nothing
// and created is false. Replicas starting at once create them only once.
func (s *Service) EnsureAdmin(ctx context.Context) (created bool, username, password, ingestToken string, err error) {
	password = randomSecret(18)
	hash, err := hashPassword(password, s.cost)
	if err != nil {
		return false, "", "", "", err
	}
	ingestToken, tokenHash := newAPIToken()
	created, err = s.st.CreateFirstAdmin(ctx,
		store.NewUser{Username: firstAdminName, PasswordHash: hash, Role: string(RoleAdmin)},
		store.NewToken{Name: firstIngestName, Role: string(RoleIngest), Hash: tokenHash[:]})
	if errors.Is(err, store.ErrConflict) {
		return false, "", "", "", fmt.Errorf("a token named %q exists but no user does: create an admin with `amas user create --role admin`", firstIngestName)
	}
	if err != nil || !created {
		return false, "", "", "", err
	}
	s.log.Info("created the first admin and an ingest token", "user", firstAdminName, "token", firstIngestName)
	return true, firstAdminName, password, ingestToken, nil
}
