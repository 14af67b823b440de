package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/amas-eye/amas/alerting/inhibit"
	"github.com/amas-eye/amas/alerting/silence"
)

const silenceColumns = `id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at`

func scanSilence(row pgx.Row) (silence.Silence, error) {
	var s silence.Silence
	var matchers []byte
	if err := row.Scan(&s.ID, &matchers, &s.StartsAt, &s.EndsAt, &s.CreatedBy, &s.Comment, &s.CreatedAt, &s.UpdatedAt); err != nil {
		return silence.Silence{}, err
	}
	if err := json.Unmarshal(matchers, &s.Matchers); err != nil {
		return silence.Silence{}, fmt.Errorf("silence %d: matchers: %w", s.ID, err)
	}
	return s, nil
}

// Silences lists the silences that end after endsAfter (zero: all), newest
// first.
func (s *Store) Silences(ctx context.Context, endsAfter time.Time) ([]silence.Silence, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+silenceColumns+` FROM silences WHERE ends_at > $1 ORDER BY id DESC`, endsAfter)
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	defer rows.Close()
	var out []silence.Silence
	for rows.Next() {
		sl, err := scanSilence(rows)
		if err != nil {
			return nil, fmt.Errorf("list silences: %w", err)
		}
		out = append(out, sl)
	}
	return out, rows.Err()
}

// Silence reads one silence.
func (s *Store) Silence(ctx context.Context, id int64) (silence.Silence, error) {
	sl, err := scanSilence(s.pool.QueryRow(ctx, `SELECT `+silenceColumns+` FROM silences WHERE id = $1`, id))
	if isNoRows(err) {
		return silence.Silence{}, fmt.Errorf("silence %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return silence.Silence{}, fmt.Errorf("read silence %d: %w", id, err)
	}
	return sl, nil
}

// CreateSilence stores a silence (checked by the caller with Validate).
func (s *Store) CreateSilence(ctx context.Context, sl silence.Silence) (silence.Silence, error) {
	matchers, err := json.Marshal(sl.Matchers)
	if err != nil {
		return silence.Silence{}, fmt.Errorf("encode silence matchers: %w", err)
	}
	out, err := scanSilence(s.pool.QueryRow(ctx, `
INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment) VALUES ($1, $2, $3, $4, $5)
RETURNING `+silenceColumns, string(matchers), sl.StartsAt, sl.EndsAt, sl.CreatedBy, sl.Comment))
	if err != nil {
		return silence.Silence{}, fmt.Errorf("create silence: %w", err)
	}
	return out, nil
}

// UpdateSilence replaces a silence's matchers, window and comment.
func (s *Store) UpdateSilence(ctx context.Context, sl silence.Silence) (silence.Silence, error) {
	matchers, err := json.Marshal(sl.Matchers)
	if err != nil {
		return silence.Silence{}, fmt.Errorf("encode silence matchers: %w", err)
	}
	out, err := scanSilence(s.pool.QueryRow(ctx, `
UPDATE silences SET matchers = $2, starts_at = $3, ends_at = $4, comment = $5, updated_at = clock_timestamp()
WHERE id = $1 RETURNING `+silenceColumns, sl.ID, string(matchers), sl.StartsAt, sl.EndsAt, sl.Comment))
	if isNoRows(err) {
		return silence.Silence{}, fmt.Errorf("silence %d: %w", sl.ID, ErrNotFound)
	}
	if err != nil {
		return silence.Silence{}, fmt.Errorf("update silence %d: %w", sl.ID, err)
	}
	return out, nil
}

// ExpireSilence ends a silence at now; a pending one gets a window of one
// microsecond ending at now, so it never mutes. An expired one keeps its end.
func (s *Store) ExpireSilence(ctx context.Context, id int64, now time.Time) (silence.Silence, error) {
	out, err := scanSilence(s.pool.QueryRow(ctx, `
UPDATE silences SET starts_at = LEAST(starts_at, $2::timestamptz - interval '1 microsecond'), ends_at = LEAST(ends_at, $2::timestamptz),
    updated_at = clock_timestamp()
WHERE id = $1 RETURNING `+silenceColumns, id, now))
	if isNoRows(err) {
		return silence.Silence{}, fmt.Errorf("silence %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return silence.Silence{}, fmt.Errorf("expire silence %d: %w", id, err)
	}
	return out, nil
}

const inhibitColumns = `id, source_matchers, target_matchers, equal_labels, comment, created_by`

func scanInhibitRule(row pgx.Row) (inhibit.Rule, error) {
	var r inhibit.Rule
	var src, dst []byte
	if err := row.Scan(&r.ID, &src, &dst, &r.Equal, &r.Comment, &r.CreatedBy); err != nil {
		return inhibit.Rule{}, err
	}
	if err := json.Unmarshal(src, &r.Source); err != nil {
		return inhibit.Rule{}, fmt.Errorf("inhibition rule %d: source: %w", r.ID, err)
	}
	if err := json.Unmarshal(dst, &r.Target); err != nil {
		return inhibit.Rule{}, fmt.Errorf("inhibition rule %d: target: %w", r.ID, err)
	}
	return r, nil
}

// InhibitRules lists the inhibition rules by id.
func (s *Store) InhibitRules(ctx context.Context) ([]inhibit.Rule, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+inhibitColumns+` FROM inhibit_rules ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list inhibition rules: %w", err)
	}
	defer rows.Close()
	var out []inhibit.Rule
	for rows.Next() {
		r, err := scanInhibitRule(rows)
		if err != nil {
			return nil, fmt.Errorf("list inhibition rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func inhibitJSON(r inhibit.Rule) (string, string, []string, error) {
	src, err := json.Marshal(r.Source)
	if err != nil {
		return "", "", nil, err
	}
	dst, err := json.Marshal(r.Target)
	if err != nil {
		return "", "", nil, err
	}
	equal := r.Equal
	if equal == nil {
		equal = []string{}
	}
	return string(src), string(dst), equal, nil
}

// CreateInhibitRule stores a rule (checked by the caller with Validate).
func (s *Store) CreateInhibitRule(ctx context.Context, r inhibit.Rule) (inhibit.Rule, error) {
	src, dst, equal, err := inhibitJSON(r)
	if err != nil {
		return inhibit.Rule{}, fmt.Errorf("encode inhibition rule: %w", err)
	}
	out, err := scanInhibitRule(s.pool.QueryRow(ctx, `
INSERT INTO inhibit_rules (source_matchers, target_matchers, equal_labels, comment, created_by) VALUES ($1, $2, $3, $4, $5)
RETURNING `+inhibitColumns, src, dst, equal, r.Comment, r.CreatedBy))
	if err != nil {
		return inhibit.Rule{}, fmt.Errorf("create inhibition rule: %w", err)
	}
	return out, nil
}

// UpdateInhibitRule replaces a rule's matchers, equal labels and comment.
func (s *Store) UpdateInhibitRule(ctx context.Context, r inhibit.Rule) (inhibit.Rule, error) {
	src, dst, equal, err := inhibitJSON(r)
	if err != nil {
		return inhibit.Rule{}, fmt.Errorf("encode inhibition rule: %w", err)
	}
	out, err := scanInhibitRule(s.pool.QueryRow(ctx, `
UPDATE inhibit_rules SET source_matchers = $2, target_matchers = $3, equal_labels = $4, comment = $5, updated_at = clock_timestamp()
WHERE id = $1 RETURNING `+inhibitColumns, r.ID, src, dst, equal, r.Comment))
	if isNoRows(err) {
		return inhibit.Rule{}, fmt.Errorf("inhibition rule %d: %w", r.ID, ErrNotFound)
	}
	if err != nil {
		return inhibit.Rule{}, fmt.Errorf("update inhibition rule %d: %w", r.ID, err)
	}
	return out, nil
}

// DeleteInhibitRule removes a rule.
func (s *Store) DeleteInhibitRule(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM inhibit_rules WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete inhibition rule %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("inhibition rule %d: %w", id, ErrNotFound)
	}
	return nil
}

// Acknowledge records that by acknowledged the firing episode of fingerprint
// that started at startsAt; acknowledging it again replaces the comment.
func (s *Store) Acknowledge(ctx context.Context, fingerprint string, startsAt time.Time, by, comment string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `
INSERT INTO alert_acks (fingerprint, starts_at, acked_by, comment, acked_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (fingerprint, starts_at) DO UPDATE SET acked_by = EXCLUDED.acked_by, comment = EXCLUDED.comment, acked_at = EXCLUDED.acked_at`,
		fingerprint, startsAt, by, comment, at)
	if err != nil {
		return fmt.Errorf("acknowledge %s: %w", fingerprint, err)
	}
	return nil
}
