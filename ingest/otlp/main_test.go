package otlp

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: pipeline
// writers and servers must end with their owners.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
