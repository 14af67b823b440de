package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/amas-eye/amas/store"
)

// tokenPrefix marks Amas API tokens, so a leaked one is recognisable to
// secret scanners and a stray string is refused without a database query.
const tokenPrefix = "amas_"

// newAPIToken returns a new token (32 random bytes) and the hash to store.
func newAPIToken() (string, [sha256.Size]byte) {
	token := tokenPrefix + randomSecret(32)
	return token, hashSecret(token)
}

// Token is an API token as listed; its secret is shown only when created.
type Token struct {
	ID         int64
	Name       string
	Role       Role
	CreatedAt  time.Time
	LastUsedAt *time.Time // updated at most once a minute
	RevokedAt  *time.Time
}

// CreateToken makes an API token and returns its secret, which is not stored
// (only its SHA-256 is) and so cannot be shown again.
func (s *Service) CreateToken(ctx context.Context, name string, role Role) (string, error) {
	if err := validateTokenName(name); err != nil {
		return "", err
	}
	if _, err := ParseRole(string(role), false); err != nil {
		return "", refuse(ErrInvalid, "%s", err)
	}
	token, hash := newAPIToken()
	_, err := s.st.CreateToken(ctx, store.NewToken{Name: name, Role: string(role), Hash: hash[:]})
	if errors.Is(err, store.ErrConflict) {
		return "", refuse(ErrInvalid, "a token named %q already exists (names of revoked tokens stay taken)", name)
	}
	if err != nil {
		return "", err
	}
	return token, nil
}

// validateTokenName also refuses names made of digits only, which RevokeToken
// could confuse with ids.
func validateTokenName(name string) error {
	if err := validateName("token name", name); err != nil {
		return err
	}
	if strings.Trim(name, "0123456789") == "" {
		return refuse(ErrInvalid, "invalid token name %q: it must not be only digits, which read as a token id", name)
	}
	return nil
}

// ListTokens returns every token, revoked ones included, without secrets.
func (s *Service) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.st.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	tokens := make([]Token, len(rows))
	for i, t := range rows {
		tokens[i] = Token{ID: t.ID, Name: t.Name, Role: Role(t.Role), CreatedAt: t.CreatedAt,
			LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
	}
	return tokens, nil
}

// RevokeToken revokes the token with that name, or else that id. This replica
// refuses it at once; other replicas (and a server when the CLI revokes) may
// accept it for up to Options.TokenCacheTTL more.
func (s *Service) RevokeToken(ctx context.Context, nameOrID string) error {
	t, err := s.st.RevokeToken(ctx, nameOrID)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(ErrInvalid, "there is no token with the name or id %q", nameOrID)
	}
	if err != nil {
		return err
	}
	s.tokens.evict(t.ID)
	return nil
}

// CheckToken returns the caller an API token stands for. Ingest calls it on
// every request, so a token found in the database is trusted for
// Options.TokenCacheTTL without asking again: a revocation takes up to that
// long to reach every replica.
func (s *Service) CheckToken(ctx context.Context, token string) (Principal, error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return Principal{}, refuse(ErrUnauthenticated, "this is not an Amas API token: they start with %q", tokenPrefix)
	}
	hash := hashSecret(token)
	now := s.now()
	if p, ok := s.tokens.get(hash, now); ok {
		return p, nil
	}
	t, err := s.st.ActiveToken(ctx, hash[:])
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, refuse(ErrUnauthenticated, "the API token is unknown or revoked")
	}
	if err != nil {
		return Principal{}, err
	}
	s.touch(ctx, t, now)
	p := Principal{TokenID: t.ID, TokenName: t.Name, Role: Role(t.Role)}
	s.tokens.put(hash, p, now)
	return p, nil
}

// touch records the token's use. It runs only on cache misses, and skips the
// query when the stored time is recent; a failure is logged, not fatal, since
// the token itself is valid.
func (s *Service) touch(ctx context.Context, t store.APIToken, now time.Time) {
	if t.LastUsedAt != nil && now.Sub(*t.LastUsedAt) < store.TokenTouchInterval {
		return
	}
	if err := s.st.TouchToken(ctx, t.ID, now); err != nil {
		s.log.Warn("record token use", "token", t.Name, "err", err)
	}
}

// tokenCache holds tokens found valid, by hash, for a short time. Only valid
// tokens are cached, so its size is bounded by the tokens table and random
// guesses cannot grow it.
type tokenCache struct {
	ttl time.Duration

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedToken
}

type cachedToken struct {
	principal Principal
	expires   time.Time
}

func newTokenCache(ttl time.Duration) *tokenCache {
	return &tokenCache{ttl: ttl, entries: make(map[[sha256.Size]byte]cachedToken)}
}

func (c *tokenCache) get(hash [sha256.Size]byte, now time.Time) (Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || !now.Before(e.expires) {
		return Principal{}, false
	}
	return e.principal, true
}

// put also sweeps expired entries: it runs only after a database lookup, so
// the sweep's cost is small beside it.
func (c *tokenCache) put(hash [sha256.Size]byte, p Principal, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, h)
		}
	}
	c.entries[hash] = cachedToken{principal: p, expires: now.Add(c.ttl)}
}

func (c *tokenCache) evict(tokenID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.entries {
		if e.principal.TokenID == tokenID {
			delete(c.entries, h)
		}
	}
}
