package promscrape

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/amas-eye/amas/collector/builtin/internal/pointtest"
)

// TestScrapeNodeExporter scrapes a real node_exporter (Debian's
// prometheus-node-exporter, which .ci/run installs).
func TestScrapeNodeExporter(t *testing.T) {
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		t.Skip("prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--collector.disable-defaults",
		"--collector.loadavg", "--collector.meminfo", "--collector.cpu")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + addr + "/metrics"
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node_exporter did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Prefix = "node."
	cfg.Exclude = []string{"go_.*", "process_.*", "promhttp_.*"} // anchored at both ends, as in relabel rules
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sink pointtest.Sink
	if err := c.Collect(context.Background(), sink.Emit); err != nil {
		t.Fatal(err)
	}
	for _, metric := range []string{"node.node_load1", "node.node_memory_MemTotal_bytes", "node.node_cpu_seconds_total"} {
		if !sink.Has(metric) {
			t.Errorf("no %s in the scrape", metric)
		}
	}
	for _, p := range sink.Points() {
		if strings.HasPrefix(p.Metric, "node.go_") {
			t.Fatalf("excluded family scraped: %s", p.Metric)
		}
		if p.Metric == "node.node_cpu_seconds_total" && (p.Tags["cpu"] == "" || p.Tags["mode"] == "") {
			t.Fatalf("labels not carried as tags: %v", p.Tags)
		}
	}
}
