package store

import (
	"errors"
	"time"
)

// FilterOp is how a tag filter compares a series' tag value.
type FilterOp string

const (
	OpEQ     FilterOp = "EQ"
	OpNEQ    FilterOp = "NEQ"
	OpRegex  FilterOp = "REGEX"
	OpNRegex FilterOp = "NREGEX"
)

// TagFilter selects series by one tag. Regexes are PostgreSQL regular expressions,
// anchored on both ends, and always passed to SQL as parameters.
type TagFilter struct {
	Key   string
	Op    FilterOp
	Value string
}

// Aggregate combines the series of one group into one.
type Aggregate string

const (
	AggAvg   Aggregate = "AVG"
	AggSum   Aggregate = "SUM"
	AggMin   Aggregate = "MIN"
	AggMax   Aggregate = "MAX"
	AggCount Aggregate = "COUNT"
	AggP50   Aggregate = "P50"
	AggP95   Aggregate = "P95"
	AggP99   Aggregate = "P99"
	AggNone  Aggregate = "NONE"
)

// SeriesQuery asks for the points of the series of one metric.
type SeriesQuery struct {
	Metric    string
	Filters   []TagFilter
	Aggregate Aggregate // empty means NONE
	GroupBy   []string
	Rate      bool // per-second rate of a counter, reset aware
	From, To  time.Time
	Step      time.Duration // zero: chosen so each series has about 1,000 points
	MaxPoints int           // total points in the answer; zero means DefaultMaxPoints
}

// Point is one value at one time.
type Point struct {
	T time.Time
	V float64
}

// Series is one answer row of a SeriesQuery.
type Series struct {
	Metric string
	Tags   map[string]string
	Points []Point
}

// DefaultMaxPoints bounds the points one query may return.
const DefaultMaxPoints = 1_000_000

// ErrBadQuery wraps every error caused by the query itself rather than the server:
// callers show its text to the user.
var ErrBadQuery = errors.New("bad query")
