package mysql

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// mutexCounters reads the SEMAPHORES section of SHOW ENGINE INNODB STATUS:
// MySQL 5.6 prints one "Mutex spin waits" line; 5.7 and 8.0 print spins per
// lock kind (RW-shared, RW-excl, RW-sx), summed here. MariaDB 10.6 and later
// print none, and then ok is false.
func mutexCounters(status string) (spinWaits, spinRounds, osWaits float64, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		if m := mutexLine.FindStringSubmatch(line); m != nil {
			return atof(m[1]), atof(m[2]), atof(m[3]), true
		}
		if m := rwLine.FindStringSubmatch(line); m != nil {
			spinWaits += atof(m[1])
			spinRounds += atof(m[2])
			osWaits += atof(m[3])
			ok = true
		}
	}
	return spinWaits, spinRounds, osWaits, ok
}

var (
	mutexLine = regexp.MustCompile(`^Mutex spin waits (\d+), rounds (\d+), OS waits (\d+)`)
	rwLine    = regexp.MustCompile(`^RW-(?:shared|excl|sx) spins (\d+), rounds (\d+), OS waits (\d+)`)
)

func atof(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// collectMutexes emits the seed's mysql.innodb.mutex_* rates where the server
// reports them.
func (c *Collector) collectMutexes(ctx context.Context, w points.Writer) error {
	var typ, name, status string
	if err := c.db.QueryRowContext(ctx, "SHOW ENGINE INNODB STATUS").Scan(&typ, &name, &status); err != nil {
		return fmt.Errorf("mysql %s: SHOW ENGINE INNODB STATUS: %w", c.instance, err)
	}
	spinWaits, rounds, osWaits, ok := mutexCounters(status)
	if !ok {
		return nil
	}
	for key, v := range map[string]float64{"mutex_spin_waits": spinWaits, "mutex_spin_rounds": rounds, "mutex_os_waits": osWaits} {
		if r, ok := c.rates.Rate(key, v, w.Time); ok {
			w.Add("mysql.innodb."+key, r)
		}
	}
	return nil
}

// clockTicks is the unit of /proc/<pid>/stat's CPU times (USER_HZ), 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// collectCPU emits the seed's mysql.performance.user_time and kernel_time, the
// percent of a CPU the server process spends in user and kernel space. It
// needs the agent on the database host (the pid file and /proc are local); on
// another host it emits nothing.
func (c *Collector) collectCPU(ctx context.Context, w points.Writer, procRoot string) {
	var pidFile sql.NullString
	if err := c.db.QueryRowContext(ctx, "SELECT @@pid_file").Scan(&pidFile); err != nil || !pidFile.Valid {
		return
	}
	b, err := os.ReadFile(pidFile.String)
	if err != nil {
		return
	}
	utime, stime, ok := processTimes(procRoot, strings.TrimSpace(string(b)))
	if !ok {
		return
	}
	if r, ok := c.rates.Rate("utime", utime, w.Time); ok {
		w.Add("mysql.performance.user_time", 100*r/clockTicks)
	}
	if r, ok := c.rates.Rate("stime", stime, w.Time); ok {
		w.Add("mysql.performance.kernel_time", 100*r/clockTicks)
	}
}

// processTimes reads utime and stime (fields 14 and 15, in clock ticks) of a
// process from <procRoot>/<pid>/stat.
func processTimes(procRoot, pid string) (utime, stime float64, ok bool) {
	if _, err := strconv.Atoi(pid); err != nil {
		return 0, 0, false
	}
	b, err := os.ReadFile(procRoot + "/" + pid + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name in parentheses may hold spaces: count fields after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(s[i+1:]) // fields[0] is field 3 (state)
	if len(fields) < 13 {
		return 0, 0, false
	}
	return atof(fields[11]), atof(fields[12]), true
}
