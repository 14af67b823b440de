package mysql

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

func TestMutexCounters(t *testing.T) {
	for _, tc := range []struct {
		file                   string
		spins, rounds, osWaits float64
		ok                     bool
	}{
		{"testdata/innodb-status-mysql56.txt", 8820, 41200, 612, true},
		{"testdata/innodb-status-mysql80.txt", 152, 1200, 87, true},
		{"", 0, 0, 0, false}, // MariaDB 10.6+: an empty SEMAPHORES section
	} {
		status := "----------\nSEMAPHORES\n----------\n------------\nTRANSACTIONS\n"
		if tc.file != "" {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			status = string(b)
		}
		spins, rounds, osWaits, ok := mutexCounters(status)
		if spins != tc.spins || rounds != tc.rounds || osWaits != tc.osWaits || ok != tc.ok {
			t.Errorf("%s: %v %v %v %v, want %v %v %v %v", tc.file, spins, rounds, osWaits, ok, tc.spins, tc.rounds, tc.osWaits, tc.ok)
		}
	}
}

func TestProcessTimes(t *testing.T) {
	utime, stime, ok := processTimes("testdata/proc", "4242")
	if !ok || utime != 1520 || stime != 381 {
		t.Fatalf("utime %v stime %v ok %v, want 1520 381", utime, stime, ok)
	}
	if _, _, ok := processTimes("testdata/proc", "../4242"); ok {
		t.Fatal("a pid that is not a number was read")
	}
}

// TestCPUTimeOfLocalServer reads the CPU time of the MariaDB on this machine,
// whose pid file and /proc entry the agent can see.
func TestCPUTimeOfLocalServer(t *testing.T) {
	c := newTestCollector(t)
	ctx := context.Background()
	var first pointtest.Sink
	if err := c.Collect(ctx, first.Emit); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	var second pointtest.Sink
	if err := c.Collect(ctx, second.Emit); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"mysql.performance.user_time", "mysql.performance.kernel_time"} {
		if !second.Has(m) {
			t.Errorf("no %s from the second collection", m)
		}
	}
}
