package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ExitDoNotRespawn is tcollector's exit code for "do not run me again" (e.g. the
// software the script watches is not installed on this host).
const ExitDoNotRespawn = 13

// runResult is how one execution of a script ended.
type runResult struct {
	exitCode int // -1 when it did not exit by itself
	timedOut bool
	err      error // nil for exit 0
	took     time.Duration
}

// run executes the script once in its own process group, feeding its output
// lines to onStdout and onStderr. With limit > 0 a run still going after limit
// gets SIGTERM, then SIGKILL after grace. The whole group is killed when the
// script ends, so a child it left behind cannot outlive it.
func run(ctx context.Context, path string, limit, grace time.Duration, onStdout, onStderr func(string)) runResult {
	start := time.Now()
	rctx, cancel := ctx, context.CancelFunc(func() {})
	if limit > 0 {
		rctx, cancel = context.WithTimeout(ctx, limit)
	}
	defer cancel()
	stdout := &lineWriter{emit: onStdout}
	stderr := &lineWriter{emit: onStderr}
	cmd, err := startCmd(rctx, path, grace, stdout, stderr)
	if err != nil {
		return runResult{exitCode: -1, err: fmt.Errorf("start: %w", err), took: time.Since(start)}
	}
	err = cmd.Wait()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers; ESRCH when none
	stdout.flush()
	stderr.flush()
	res := runResult{exitCode: cmd.ProcessState.ExitCode(), took: time.Since(start)}
	switch {
	case limit > 0 && errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		res.timedOut = true
		res.err = fmt.Errorf("still running after %s: killed", limit)
	case err != nil:
		res.err = exitError(err)
	}
	return res
}

// startRetries bounds the retries of a start that failed with "text file
// busy": a script just written (by an editor, a deployment, or this process
// forking meanwhile) can be briefly held open for writing.
const startRetries = 5

func startCmd(ctx context.Context, path string, grace time.Duration, stdout, stderr *lineWriter) (*exec.Cmd, error) {
	// The script runs in its own directory, so a relative path (from a
	// relative --collectors-dir) would name the wrong file.
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		cmd := exec.CommandContext(ctx, path)
		cmd.Dir = filepath.Dir(path)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
		cmd.WaitDelay = grace
		err := cmd.Start()
		if err == nil || !errors.Is(err, syscall.ETXTBSY) || attempt == startRetries {
			return cmd, err
		}
		time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
	}
}

func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("killed by signal %s", ws.Signal())
		}
		return fmt.Errorf("exit status %d", ee.ExitCode())
	}
	return err
}

// lineWriter cuts a stream into lines. Of a line longer than MaxLineBytes
// only the first MaxLineBytes+1 bytes are passed on, so that the parser refuses
// (and counts) it once, and memory stays bounded.
type lineWriter struct {
	emit func(string)
	buf  []byte
	skip bool // inside an overlong line already passed on
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if !w.skip {
			w.emit(string(bytes.TrimRight(w.buf[:i], "\r")))
		}
		w.skip = false
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > MaxLineBytes {
		if !w.skip {
			w.emit(string(w.buf[:MaxLineBytes+1]))
		}
		w.skip = true
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// flush passes on a last line that had no newline.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 && !w.skip {
		w.emit(string(w.buf))
		w.buf = nil
	}
}
