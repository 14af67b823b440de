package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/alerting/notifiers"
	"github.com/amas-eye/amas/internal/secretkey"
)

const channelColumns = `id, name, type, settings, secrets, secrets_sealed, template, send_resolved, created_at, updated_at`

// UseSecretKeys makes the store seal the channel secrets it writes with
// current and open those sealed with it or with one of the previous keys; a nil
// current stores them plain. Call it before the store is used.
func (s *Store) UseSecretKeys(current *secretkey.Key, previous ...*secretkey.Key) {
	s.secretKeys = nil
	if current != nil {
		s.secretKeys = &secretkey.Ring{Current: current, Previous: previous}
	}
}

// scanChannel reads a channel row. Secrets that cannot be opened (sealed by a
// server with another key, or read by one without a key) leave the channel
// with no secrets and SecretsErr set: the other channels still work. A row
// with both plain and sealed secrets was updated by a binary older than
// migration 0008's (a rolling upgrade): its plain secrets are the newer.
func (s *Store) scanChannel(row pgx.Row) (notifiers.Channel, error) {
	var ch notifiers.Channel
	var sealed []byte
	err := row.Scan(&ch.ID, &ch.Name, &ch.Type, &ch.Settings, &ch.Secrets, &sealed, &ch.Template, &ch.SendResolved, &ch.CreatedAt, &ch.UpdatedAt)
	if ch.Settings == nil {
		ch.Settings = map[string]string{}
	}
	if err == nil && sealed != nil && len(ch.Secrets) == 0 {
		ch.Secrets, ch.SecretsErr = s.openSecrets(sealed)
	}
	if ch.Secrets == nil {
		ch.Secrets = map[string]string{}
	}
	return ch, err
}

func (s *Store) openSecrets(sealed []byte) (map[string]string, error) {
	if s.secretKeys == nil {
		return nil, fmt.Errorf("its secrets are sealed (key %s) and this server has no --secret-key-file", secretkey.Fingerprint(sealed))
	}
	plain, err := s.secretKeys.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("its secrets cannot be read: %w", err)
	}
	var secrets map[string]string
	if err := json.Unmarshal(plain, &secrets); err != nil {
		return nil, fmt.Errorf("its secrets cannot be read: %w", err)
	}
	return secrets, nil
}

// Channels lists every notification channel, by name, secrets included (for the
// dispatcher; the API never shows them).
func (s *Store) Channels(ctx context.Context) ([]notifiers.Channel, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+channelColumns+` FROM notify_channels ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	defer rows.Close()
	var out []notifiers.Channel
	for rows.Next() {
		ch, err := s.scanChannel(rows)
		if err != nil {
			return nil, fmt.Errorf("list channels: %w", err)
		}
		out = append(out, ch)
	}
	return out, rows.Err()
}

// Channel reads one channel; ErrNotFound when there is none with id.
func (s *Store) Channel(ctx context.Context, id int64) (notifiers.Channel, error) {
	ch, err := s.scanChannel(s.pool.QueryRow(ctx, `SELECT `+channelColumns+` FROM notify_channels WHERE id = $1`, id))
	if isNoRows(err) {
		return notifiers.Channel{}, fmt.Errorf("channel %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return notifiers.Channel{}, fmt.Errorf("read channel %d: %w", id, err)
	}
	return ch, nil
}

const insertChannel = `
INSERT INTO notify_channels (name, type, settings, secrets, secrets_sealed, template, send_resolved)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ` + channelColumns

// CreateChannel stores a new channel (checked by the caller with
// notifiers.Validate); ErrConflict when the name is taken.
func (s *Store) CreateChannel(ctx context.Context, ch notifiers.Channel) (notifiers.Channel, error) {
	settings, secrets, sealed, err := s.encodeChannel(ch)
	if err != nil {
		return notifiers.Channel{}, err
	}
	out, err := s.scanChannel(s.pool.QueryRow(ctx, insertChannel, ch.Name, ch.Type, settings, secrets, sealed, ch.Template, ch.SendResolved))
	if isUniqueViolation(err) {
		return notifiers.Channel{}, fmt.Errorf("channel %q: %w", ch.Name, ErrConflict)
	}
	if err != nil {
		return notifiers.Channel{}, fmt.Errorf("create channel %q: %w", ch.Name, err)
	}
	return out, nil
}

const updateChannel = `
UPDATE notify_channels SET name = $2, type = $3, settings = $4, secrets = $5, secrets_sealed = $6, template = $7,
    send_resolved = $8, updated_at = clock_timestamp()
WHERE id = $1 RETURNING ` + channelColumns

// UpdateChannel replaces a channel's fields, secrets included: the caller
// merges the secrets it was given into the stored ones.
func (s *Store) UpdateChannel(ctx context.Context, ch notifiers.Channel) (notifiers.Channel, error) {
	settings, secrets, sealed, err := s.encodeChannel(ch)
	if err != nil {
		return notifiers.Channel{}, err
	}
	out, err := s.scanChannel(s.pool.QueryRow(ctx, updateChannel, ch.ID, ch.Name, ch.Type, settings, secrets, sealed, ch.Template, ch.SendResolved))
	switch {
	case isNoRows(err):
		return notifiers.Channel{}, fmt.Errorf("channel %d: %w", ch.ID, ErrNotFound)
	case isUniqueViolation(err):
		return notifiers.Channel{}, fmt.Errorf("channel %q: %w", ch.Name, ErrConflict)
	case err != nil:
		return notifiers.Channel{}, fmt.Errorf("update channel %d: %w", ch.ID, err)
	}
	return out, nil
}

// DeleteChannel removes a channel; its notifications stay in the log.
func (s *Store) DeleteChannel(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM notify_channels WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete channel %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("channel %d: %w", id, ErrNotFound)
	}
	return nil
}

// encodeChannel encodes the settings and secrets columns: the jsonb ones as
// text (a []byte parameter is sent as bytea where pgx does not know the
// column's type, as on PGlite), the secrets sealed when the store has a key.
func (s *Store) encodeChannel(ch notifiers.Channel) (settings, secrets string, sealed []byte, err error) {
	settingsJSON, err := json.Marshal(orEmpty(ch.Settings))
	if err != nil {
		return "", "", nil, fmt.Errorf("encode channel settings: %w", err)
	}
	secretsJSON, err := json.Marshal(orEmpty(ch.Secrets))
	if err != nil {
		return "", "", nil, fmt.Errorf("encode channel secrets: %w", err)
	}
	if s.secretKeys == nil {
		return string(settingsJSON), string(secretsJSON), nil, nil
	}
	return string(settingsJSON), "{}", s.secretKeys.Current.Seal(secretsJSON), nil
}

// sealedWith is the fingerprint of the key that sealed a row's secrets (see
// internal/secretkey: a version byte, then four bytes of fingerprint).
const sealedWith = `encode(substring(secrets_sealed FROM 2 FOR 4), 'hex')`

// selectUnsealed is the channels whose secrets are plain or sealed with a key
// other than $1 (its fingerprint): what SealSecrets has to do.
const selectUnsealed = `
SELECT id, name, secrets, secrets_sealed FROM notify_channels
WHERE secrets <> '{}' OR (secrets_sealed IS NOT NULL AND ` + sealedWith + ` <> $1)
ORDER BY id FOR UPDATE`

// SealReport is what SealSecrets did.
type SealReport struct {
	Sealed     int // plain secrets sealed
	Resealed   int // secrets sealed with a previous key, sealed again with the current one
	Unreadable []UnreadableChannel
}

// UnreadableChannel is a channel sealed with a key the store does not have.
type UnreadableChannel struct {
	Name string
	Key  string // the fingerprint of the key that sealed it
}

// SealSecrets seals, with the store's current key, the channel secrets stored
// plain (by a server without a key, or before migration 0008) and those sealed
// with a previous key. Replicas starting together do each row once.
func (s *Store) SealSecrets(ctx context.Context) (SealReport, error) {
	if s.secretKeys == nil {
		return SealReport{}, errors.New("seal channel secrets: the store has no secret key")
	}
	var rep SealReport
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rep = SealReport{}
		rows, err := tx.Query(ctx, selectUnsealed, s.secretKeys.Current.ID())
		if err != nil {
			return err
		}
		type row struct {
			id            int64
			name          string
			plain, sealed []byte
		}
		var todo []row
		var r row
		if _, err := pgx.ForEachRow(rows, []any{&r.id, &r.name, &r.plain, &r.sealed}, func() error {
			todo = append(todo, row{r.id, r.name, bytes.Clone(r.plain), bytes.Clone(r.sealed)})
			return nil
		}); err != nil {
			return err
		}
		for _, r := range todo {
			// Plain secrets beside sealed ones are the newer (see scanChannel).
			plain, resealing := r.plain, string(r.plain) == "{}"
			if resealing {
				if plain, err = s.secretKeys.Open(r.sealed); err != nil {
					rep.Unreadable = append(rep.Unreadable, UnreadableChannel{r.name, secretkey.Fingerprint(r.sealed)})
					continue
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE notify_channels SET secrets = '{}', secrets_sealed = $2 WHERE id = $1`,
				r.id, s.secretKeys.Current.Seal(plain)); err != nil {
				return err
			}
			if resealing {
				rep.Resealed++
			} else {
				rep.Sealed++
			}
		}
		return nil
	})
	if err != nil {
		return SealReport{}, fmt.Errorf("seal channel secrets: %w", err)
	}
	return rep, nil
}

// SecretsAtRest counts the channels whose secrets are stored plain, and the
// channels sealed by each key (by fingerprint), for a server to say at start
// what it cannot seal or read.
func (s *Store) SecretsAtRest(ctx context.Context) (plain int, sealedBy map[string]int, err error) {
	rows, err := s.pool.Query(ctx, `
SELECT coalesce(`+sealedWith+`, ''), count(*) FROM notify_channels
WHERE secrets <> '{}' OR secrets_sealed IS NOT NULL
GROUP BY 1`)
	if err != nil {
		return 0, nil, fmt.Errorf("count channel secrets: %w", err)
	}
	sealedBy = map[string]int{}
	var (
		key string
		n   int
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &n}, func() error {
		if key == "" {
			plain = n
		} else {
			sealedBy[key] = n
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("count channel secrets: %w", err)
	}
	return plain, sealedBy, nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
