package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrConflict is returned when a row would duplicate a unique name (a username,
// a token name).
var ErrConflict = errors.New("already exists")

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// User is an account as stored. Role is one of admin, editor, viewer.
type User struct {
	ID           int64
	Username     string
	PasswordHash string
	Role         string
	CreatedAt    time.Time
}

// NewUser is what CreateUser needs; the caller hashes the password.
type NewUser struct {
	Username     string
	PasswordHash string
	Role         string
}

// APIToken is an API token as listed: its hash never leaves the store.
type APIToken struct {
	ID         int64
	Name       string
	Role       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// NewToken is what CreateToken needs: the SHA-256 of the secret, never the secret.
type NewToken struct {
	Name string
	Role string
	Hash []byte
}

// querier is the part of a pool or transaction that the create functions need,
// so they run alone or inside CreateFirstAdmin's transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const userColumns = `users.id, users.username, users.password_hash, users.role, users.created_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Role, &u.CreatedAt)
	return u, err
}

// CreateUser adds an account; a taken username gives ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u NewUser) (User, error) {
	return createUser(ctx, s.pool, u)
}

const insertUser = `INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) RETURNING ` + userColumns

func createUser(ctx context.Context, q querier, u NewUser) (User, error) {
	created, err := scanUser(q.QueryRow(ctx, insertUser, u.Username, u.PasswordHash, u.Role))
	if isUniqueViolation(err) {
		return User{}, fmt.Errorf("create user %q: %w", u.Username, ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user %q: %w", u.Username, err)
	}
	return created, nil
}

const (
	updatePasswordHash = `UPDATE users SET password_hash = $2 WHERE username = $1 RETURNING id`
	deleteUserSessions = `DELETE FROM sessions WHERE user_id = $1`
)

// SetPasswordHash replaces a user's password hash and ends all their sessions,
// so changing a password after a leak also signs out whoever used the old one.
// An unknown username gives ErrNotFound.
func (s *Store) SetPasswordHash(ctx context.Context, username, hash string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, updatePasswordHash, username, hash).Scan(&id)
		if isNoRows(err) {
			return fmt.Errorf("set password of %q: %w", username, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("set password of %q: %w", username, err)
		}
		if _, err := tx.Exec(ctx, deleteUserSessions, id); err != nil {
			return fmt.Errorf("end sessions of %q: %w", username, err)
		}
		return nil
	})
}

const selectUserByUsername = `SELECT ` + userColumns + ` FROM users WHERE username = $1`

// UserByUsername returns the account named username, or ErrNotFound.
func (s *Store) UserByUsername(ctx context.Context, username string) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, selectUserByUsername, username))
	if isNoRows(err) {
		return User{}, fmt.Errorf("user %q: %w", username, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", username, err)
	}
	return u, nil
}

const selectUserByID = `SELECT ` + userColumns + ` FROM users WHERE id = $1`

// UserByID returns the account with id, or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, selectUserByID, id))
	if isNoRows(err) {
		return User{}, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("user %d: %w", id, err)
	}
	return u, nil
}

const selectUsers = `SELECT ` + userColumns + ` FROM users ORDER BY username`

// Users lists every account by username.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.pool.Query(ctx, selectUsers)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (User, error) { return scanUser(row) })
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// firstAdminLockKey serialises CreateFirstAdmin across replicas that start at
// once; it differs from the migration lock so the two never wait on each other.
const firstAdminLockKey = 0x616d6131 // "ama1"

const (
	lockFirstAdmin = `SELECT pg_advisory_xact_lock($1)`
	anyUser        = `SELECT EXISTS (SELECT 1 FROM users)`
)

// CreateFirstAdmin creates u and the token t in one transaction, but only on a
// database without any user; created is false when a user already exists. A
// token name that is already taken gives ErrConflict and creates nothing.
func (s *Store) CreateFirstAdmin(ctx context.Context, u NewUser, t NewToken) (created bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockFirstAdmin, firstAdminLockKey); err != nil {
			return fmt.Errorf("lock first admin: %w", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, anyUser).Scan(&exists); err != nil {
			return fmt.Errorf("look for users: %w", err)
		}
		if exists {
			return nil
		}
		if _, err := createUser(ctx, tx, u); err != nil {
			return err
		}
		if _, err := createToken(ctx, tx, t); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created, err
}

const insertSession = `INSERT INTO sessions (id_hash, user_id, expires_at) VALUES ($1, $2, $3)`

// CreateSession stores a session by the hash of its id, so a database dump
// cannot be replayed as cookies.
func (s *Store) CreateSession(ctx context.Context, idHash []byte, userID int64, expiresAt time.Time) error {
	if _, err := s.pool.Exec(ctx, insertSession, idHash, userID, expiresAt); err != nil {
		return fmt.Errorf("create session for user %d: %w", userID, err)
	}
	return nil
}

const selectSessionUser = `
SELECT ` + userColumns + `
FROM sessions JOIN users ON users.id = sessions.user_id
WHERE sessions.id_hash = $1 AND sessions.expires_at > $2`

// SessionUser returns the user of the session whose id hashes to idHash, if
// it has not expired at now; otherwise ErrNotFound. The user is read on every
// call, so a role change applies to open sessions at once.
func (s *Store) SessionUser(ctx context.Context, idHash []byte, now time.Time) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, selectSessionUser, idHash, now))
	if isNoRows(err) {
		return User{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("session: %w", err)
	}
	return u, nil
}

const deleteSession = `DELETE FROM sessions WHERE id_hash = $1`

// DeleteSession ends a session; ending one that does not exist is not an error.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.pool.Exec(ctx, deleteSession, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

const deleteExpiredSessions = `DELETE FROM sessions WHERE expires_at <= $1`

// DeleteExpiredSessions removes the sessions expired at now and says how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, deleteExpiredSessions, now)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

const tokenColumns = `id, name, role, created_at, last_used_at, revoked_at`

func scanToken(row pgx.Row) (APIToken, error) {
	var t APIToken
	err := row.Scan(&t.ID, &t.Name, &t.Role, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
	return t, err
}

// CreateToken stores a token by its hash; a taken name gives ErrConflict.
// Names stay taken after revocation, so a name in a log always means one token.
func (s *Store) CreateToken(ctx context.Context, t NewToken) (APIToken, error) {
	return createToken(ctx, s.pool, t)
}

const insertToken = `INSERT INTO api_tokens (name, role, token_hash) VALUES ($1, $2, $3) RETURNING ` + tokenColumns

func createToken(ctx context.Context, q querier, t NewToken) (APIToken, error) {
	created, err := scanToken(q.QueryRow(ctx, insertToken, t.Name, t.Role, t.Hash))
	if isUniqueViolation(err) {
		return APIToken{}, fmt.Errorf("create token %q: %w", t.Name, ErrConflict)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("create token %q: %w", t.Name, err)
	}
	return created, nil
}

const selectTokens = `SELECT ` + tokenColumns + ` FROM api_tokens ORDER BY name`

// Tokens lists every token, revoked ones included, by name.
func (s *Store) Tokens(ctx context.Context) ([]APIToken, error) {
	rows, err := s.pool.Query(ctx, selectTokens)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	tokens, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (APIToken, error) { return scanToken(row) })
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return tokens, nil
}

const selectActiveToken = `SELECT ` + tokenColumns + ` FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL`

// ActiveToken returns the unrevoked token whose secret hashes to hash, or ErrNotFound.
func (s *Store) ActiveToken(ctx context.Context, hash []byte) (APIToken, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, selectActiveToken, hash))
	if isNoRows(err) {
		return APIToken{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// revokeToken matches a name first and reads nameOrID as an id only when no
// token has that name, so a token named "7" is never mistaken for id 7.
// COALESCE keeps the first revocation time when a token is revoked twice.
const revokeToken = `
UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now())
WHERE name = $1
   OR (id::text = $1 AND NOT EXISTS (SELECT 1 FROM api_tokens WHERE name = $1))
RETURNING ` + tokenColumns

// RevokeToken revokes the token with the name, or else the id, nameOrID and
// returns it; no match gives ErrNotFound. Revoking twice is not an error.
func (s *Store) RevokeToken(ctx context.Context, nameOrID string) (APIToken, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, revokeToken, nameOrID))
	if isNoRows(err) {
		return APIToken{}, fmt.Errorf("revoke token %q: %w", nameOrID, ErrNotFound)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("revoke token %q: %w", nameOrID, err)
	}
	return t, nil
}

// TokenTouchInterval is how stale a token's last_used_at may get: recording
// every use would turn each ingest request into a row update.
const TokenTouchInterval = time.Minute

// touchToken skips the write when last_used_at is recent, so replicas that
// check the same token at once do not each rewrite the row.
const touchToken = `
UPDATE api_tokens SET last_used_at = $2
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2::timestamptz - $3::interval)`

// TouchToken records that the token was used at now, unless it was already
// recorded within TokenTouchInterval.
func (s *Store) TouchToken(ctx context.Context, id int64, now time.Time) error {
	if _, err := s.pool.Exec(ctx, touchToken, id, now, TokenTouchInterval); err != nil {
		return fmt.Errorf("touch token %d: %w", id, err)
	}
	return nil
}
