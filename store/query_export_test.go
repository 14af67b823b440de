package store

import "context"

// QuerySeriesRaw answers q from the raw samples whatever its step, so tests can
// compare rollup answers with it.
func (s *Store) QuerySeriesRaw(ctx context.Context, q SeriesQuery) ([]Series, error) {
	return s.querySeries(ctx, q, sourceRaw)
}

// AutoStep exposes the step chosen for queries without one.
var AutoStep = autoStep
