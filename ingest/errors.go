package ingest

import "errors"

// ErrOverloaded means the write queue is full: the caller should answer with
// back-pressure (HTTP 503 + Retry-After, gRPC UNAVAILABLE) and the client retry.
var ErrOverloaded = errors.New("write queue is full, retry later")

// ErrClosed means the pipeline is shutting down and accepts nothing new.
var ErrClosed = errors.New("write pipeline is shutting down")
