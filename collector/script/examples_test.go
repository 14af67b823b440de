package script

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/amas-eye/amas/ingest"
)

// TestShippedExamples runs the example collectors of collector/examples (Shell,
// Python, Perl) once: each prints at least one line, and every line is one
// the agent ships.
func TestShippedExamples(t *testing.T) {
	scripts, err := filepath.Glob("../examples/[0-9]*/*")
	if err != nil || len(scripts) < 3 {
		t.Fatalf("found %v (%v): want the Shell, Python and Perl examples", scripts, err)
	}
	for _, path := range scripts {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			longRunning := filepath.Base(filepath.Dir(path)) == "0"
			var mu sync.Mutex
			var lines []string
			res := run(context.Background(), path, 3*time.Second, time.Second,
				func(line string) { mu.Lock(); lines = append(lines, line); mu.Unlock() },
				func(line string) { t.Errorf("stderr: %s", line) })
			if longRunning && !res.timedOut || !longRunning && res.err != nil {
				t.Fatalf("run: exit %d, timed out %v, err %v", res.exitCode, res.timedOut, res.err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(lines) == 0 {
				t.Fatal("printed nothing")
			}
			for _, line := range lines {
				if _, err := ParseLine(line, ingest.DefaultLimits); err != nil {
					t.Errorf("line %q: %v", line, err)
				}
			}
		})
	}
}
