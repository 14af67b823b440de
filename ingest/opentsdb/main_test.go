package opentsdb

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// connection handler must end with its server.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
