// Package spark collects Spark applications through the monitoring REST API of
// a driver (its UI, :4040) or of the history server (:18080):
//
//	spark.applications                      running applications listed
//	spark.jobs {app, status}                jobs by status (RUNNING, SUCCEEDED, FAILED, UNKNOWN)
//	spark.jobs.tasks.{active,completed,failed,skipped} {app}   over all jobs
//	spark.executors {app}                   executors alive (the driver included)
//	spark.executor.{memory_used,max_memory,disk_used,active_tasks,completed_tasks,
//	  failed_tasks,total_duration_ms,gc_time_ms,input_bytes,shuffle_read_bytes,
//	  shuffle_write_bytes,cores} {app, executor}
//	spark.up                                1 when the REST API answered
//
// app is the application id. Totals are counters: ask for a rate when querying.
// Every point carries instance=<host>_<port>. The seed names no spark.* metric,
// so these follow its <component>.<group>.<name> style.
package spark

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/amas-eye/amas/collector"
	"github.com/amas-eye/amas/collector/builtin/internal/httpjson"
	"github.com/amas-eye/amas/collector/builtin/internal/points"
)

// Config is the `spark` section of agent.yaml.
type Config struct {
	// URL is the driver UI or history server, e.g. http://driver:4040.
	URL string `yaml:"url"`
	// MaxApps bounds the running applications read per collection.
	MaxApps int `yaml:"max_apps"`
}

// DefaultConfig returns the defaults documented in the example agent.yaml.
func DefaultConfig() Config { return Config{URL: "http://127.0.0.1:4040", MaxApps: 20} }

// Collector reads one Spark REST endpoint.
type Collector struct {
	api      string
	instance string
	maxApps  int
	client   *http.Client
	now      func() time.Time
}

// New validates cfg.
func New(cfg Config) (*Collector, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url: want a Spark UI or history server such as http://host:4040, got %q", cfg.URL)
	}
	if cfg.MaxApps <= 0 {
		return nil, fmt.Errorf("max_apps: must be positive, got %d", cfg.MaxApps)
	}
	return &Collector{api: strings.TrimSuffix(cfg.URL, "/") + "/api/v1", instance: u.Host,
		maxApps: cfg.MaxApps, client: &http.Client{}, now: time.Now}, nil
}

// Name is the collector kind.
func (c *Collector) Name() string { return "spark" }

type application struct {
	ID string `json:"id"`
}

type job struct {
	Status            string  `json:"status"`
	NumActiveTasks    float64 `json:"numActiveTasks"`
	NumCompletedTasks float64 `json:"numCompletedTasks"`
	NumFailedTasks    float64 `json:"numFailedTasks"`
	NumSkippedTasks   float64 `json:"numSkippedTasks"`
}

type executor struct {
	ID                string  `json:"id"`
	IsActive          bool    `json:"isActive"`
	TotalCores        float64 `json:"totalCores"`
	MemoryUsed        float64 `json:"memoryUsed"`
	MaxMemory         float64 `json:"maxMemory"`
	DiskUsed          float64 `json:"diskUsed"`
	ActiveTasks       float64 `json:"activeTasks"`
	CompletedTasks    float64 `json:"completedTasks"`
	FailedTasks       float64 `json:"failedTasks"`
	TotalDuration     float64 `json:"totalDuration"`
	TotalGCTime       float64 `json:"totalGCTime"`
	TotalInputBytes   float64 `json:"totalInputBytes"`
	TotalShuffleRead  float64 `json:"totalShuffleRead"`
	TotalShuffleWrite float64 `json:"totalShuffleWrite"`
}

// Collect lists the running applications and reads their jobs and executors;
// an application that ends between the calls is skipped, not an error.
func (c *Collector) Collect(ctx context.Context, emit collector.Emit) error {
	w := points.Writer{Emit: emit, Time: c.now(), Tags: map[string]string{"instance": c.instance}}
	var apps []application
	if err := httpjson.Get(ctx, c.client, c.api+"/applications?status=running", &apps); err != nil {
		w.Add("spark.up", 0)
		return err
	}
	w.Add("spark.up", 1)
	w.Add("spark.applications", float64(len(apps)))
	var errs []error
	for _, app := range apps[:min(len(apps), c.maxApps)] {
		if err := c.collectApp(ctx, w.With("app", app.ID), app.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Collector) collectApp(ctx context.Context, w points.Writer, id string) error {
	base := c.api + "/applications/" + url.PathEscape(id)
	var jobs []job
	if err := httpjson.Get(ctx, c.client, base+"/jobs", &jobs); err != nil {
		return err
	}
	byStatus := map[string]float64{"RUNNING": 0, "SUCCEEDED": 0, "FAILED": 0, "UNKNOWN": 0}
	var active, completed, failed, skipped float64
	for _, j := range jobs {
		byStatus[j.Status]++
		active += j.NumActiveTasks
		completed += j.NumCompletedTasks
		failed += j.NumFailedTasks
		skipped += j.NumSkippedTasks
	}
	for status, n := range byStatus {
		w.Add("spark.jobs", n, "status", status)
	}
	w.Add("spark.jobs.tasks.active", active)
	w.Add("spark.jobs.tasks.completed", completed)
	w.Add("spark.jobs.tasks.failed", failed)
	w.Add("spark.jobs.tasks.skipped", skipped)

	var executors []executor
	if err := httpjson.Get(ctx, c.client, base+"/executors", &executors); err != nil {
		return err
	}
	w.Add("spark.executors", float64(len(executors)))
	for _, e := range executors {
		ew := w.With("executor", e.ID)
		for _, m := range []struct {
			name string
			v    float64
		}{
			{"cores", e.TotalCores}, {"memory_used", e.MemoryUsed}, {"max_memory", e.MaxMemory},
			{"disk_used", e.DiskUsed}, {"active_tasks", e.ActiveTasks}, {"completed_tasks", e.CompletedTasks},
			{"failed_tasks", e.FailedTasks}, {"total_duration_ms", e.TotalDuration}, {"gc_time_ms", e.TotalGCTime},
			{"input_bytes", e.TotalInputBytes}, {"shuffle_read_bytes", e.TotalShuffleRead},
			{"shuffle_write_bytes", e.TotalShuffleWrite},
		} {
			ew.Add("spark.executor."+m.name, m.v)
		}
	}
	return nil
}
