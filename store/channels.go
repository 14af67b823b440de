package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/alerting/notifiers"
)

const channelColumns = `id, name, type, settings, secrets, template, send_resolved, created_at, updated_at`

func scanChannel(row pgx.Row) (notifiers.Channel, error) {
	var ch notifiers.Channel
	err := row.Scan(&ch.ID, &ch.Name, &ch.Type, &ch.Settings, &ch.Secrets, &ch.Template, &ch.SendResolved, &ch.CreatedAt, &ch.UpdatedAt)
	if ch.Settings == nil {
		ch.Settings = map[string]string{}
	}
	if ch.Secrets == nil {
		ch.Secrets = map[string]string{}
	}
	return ch, err
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
		ch, err := scanChannel(rows)
		if err != nil {
			return nil, fmt.Errorf("list channels: %w", err)
		}
		out = append(out, ch)
	}
	return out, rows.Err()
}

// Channel reads one channel; ErrNotFound when there is none with id.
func (s *Store) Channel(ctx context.Context, id int64) (notifiers.Channel, error) {
	ch, err := scanChannel(s.pool.QueryRow(ctx, `SELECT `+channelColumns+` FROM notify_channels WHERE id = $1`, id))
	if isNoRows(err) {
		return notifiers.Channel{}, fmt.Errorf("channel %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return notifiers.Channel{}, fmt.Errorf("read channel %d: %w", id, err)
	}
	return ch, nil
}

const insertChannel = `
INSERT INTO notify_channels (name, type, settings, secrets, template, send_resolved)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING ` + channelColumns

// CreateChannel stores a new channel (checked by the caller with
// notifiers.Validate); ErrConflict when the name is taken.
func (s *Store) CreateChannel(ctx context.Context, ch notifiers.Channel) (notifiers.Channel, error) {
	settings, secrets, err := channelJSON(ch)
	if err != nil {
		return notifiers.Channel{}, err
	}
	out, err := scanChannel(s.pool.QueryRow(ctx, insertChannel, ch.Name, ch.Type, settings, secrets, ch.Template, ch.SendResolved))
	if isUniqueViolation(err) {
		return notifiers.Channel{}, fmt.Errorf("channel %q: %w", ch.Name, ErrConflict)
	}
	if err != nil {
		return notifiers.Channel{}, fmt.Errorf("create channel %q: %w", ch.Name, err)
	}
	return out, nil
}

const updateChannel = `
UPDATE notify_channels SET name = $2, type = $3, settings = $4, secrets = $5, template = $6, send_resolved = $7,
    updated_at = clock_timestamp()
WHERE id = $1 RETURNING ` + channelColumns

// UpdateChannel replaces a channel's fields, secrets included: the caller
// merges the secrets it was given into the stored ones.
func (s *Store) UpdateChannel(ctx context.Context, ch notifiers.Channel) (notifiers.Channel, error) {
	settings, secrets, err := channelJSON(ch)
	if err != nil {
		return notifiers.Channel{}, err
	}
	out, err := scanChannel(s.pool.QueryRow(ctx, updateChannel, ch.ID, ch.Name, ch.Type, settings, secrets, ch.Template, ch.SendResolved))
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

// channelJSON encodes the jsonb columns as text: a []byte parameter is sent as
// bytea where pgx does not know the column's type (exec mode, as on PGlite).
func channelJSON(ch notifiers.Channel) (string, string, error) {
	settings, err := json.Marshal(orEmpty(ch.Settings))
	if err != nil {
		return "", "", fmt.Errorf("encode channel settings: %w", err)
	}
	secrets, err := json.Marshal(orEmpty(ch.Secrets))
	if err != nil {
		return "", "", fmt.Errorf("encode channel secrets: %w", err)
	}
	return string(settings), string(secrets), nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
