package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// benchToken is the token the agents send and the receivers expect.
const benchToken = "bench-token"

// buildAgent compiles amas as `make build` does (static, stripped) into dir.
func buildAgent(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "amas")
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "github.com/amas-eye/amas/cmd/amas")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/amas: %w\n%s", err, out)
	}
	return bin, nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// agentProcess is one `amas agent` child shipping to a receiver.
type agentProcess struct {
	name string
	cmd  *exec.Cmd
	log  string // its stderr
	done chan struct{}
	err  error // of Wait, once done is closed
}

// startAgent writes the agent.yaml config into dir and runs `amas agent` on
// it with a spool of its own, shipping to rcv.
func startAgent(bin, dir, name, config string, rcv *receiver) (*agentProcess, error) {
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "agent", "--config", cfgPath, "--server", rcv.URL, "--token", benchToken,
		"--spool-dir", filepath.Join(dir, name+"-spool"), "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the %s agent: %w", name, err)
	}
	p := &agentProcess{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *agentProcess) pid() int { return p.cmd.Process.Pid }

// check fails, with the end of the agent's log, once the agent has exited.
func (p *agentProcess) check() error {
	select {
	case <-p.done:
		return fmt.Errorf("the %s agent exited (%v); its log ends with:\n%s", p.name, p.err, p.logTail())
	default:
		return nil
	}
}

// stop sends SIGTERM, as a service manager would, and waits for the exit.
func (p *agentProcess) stop() error {
	if err := p.check(); err != nil {
		return err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("the %s agent did not stop within 20s of SIGTERM", p.name)
	}
	if p.err != nil {
		return fmt.Errorf("the %s agent exited with %v; its log ends with:\n%s", p.name, p.err, p.logTail())
	}
	return nil
}

func (p *agentProcess) logTail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}
