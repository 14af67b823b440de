// Package engine evaluates alert rules continuously. Every replica running the
// alert role runs one Engine; they share nothing but PostgreSQL:
//
//   - Leases. Each rule has a lease row. An engine renews the leases it holds on
//     every tick (a lease lasts the rule's interval), takes free or expired ones
//     with FOR UPDATE SKIP LOCKED up to its fair share (enabled rules / live
//     replicas, rounded up), and gives back what exceeds its share when replicas
//     join. A dead replica's leases run out one interval after its last renewal
//     and are taken on the next tick, so its rules are evaluated again within two
//     intervals. Results are written only under a lease the writer still holds
//     (checked with a row lock in the same transaction), so a rule is never
//     evaluated into the database by two replicas.
//   - State. Alert instances and their history are in PostgreSQL; an engine that
//     takes a rule over loads its instances, so a restart or a failover continues
//     the state machine (pending timers included) and announces nothing again.
//   - Events. Every state change is written to alert_history and announced with
//     NOTIFY on store.AlertsChannel in the same transaction.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amas-eye/amas/alerting/rule"
	"github.com/amas-eye/amas/store"
)

// Leases is how an engine coordinates with the other replicas (store.Store).
type Leases interface {
	AlertReplicaHeartbeat(ctx context.Context, id string, now, aliveSince time.Time) (rules, replicas int, err error)
	RenewAlertLeases(ctx context.Context, owner string, now time.Time, minTTL time.Duration) ([]store.HeldRule, error)
	ClaimAlertLeases(ctx context.Context, owner string, now time.Time, minTTL time.Duration, n int) ([]store.HeldRule, error)
	ReleaseAlertLeases(ctx context.Context, owner string, ruleIDs []int64) error
	LeaveAlertReplicas(ctx context.Context, id string) error
}

// RuleState loads rules and their instances and writes evaluations (store.Store).
type RuleState interface {
	AlertRulesByID(ctx context.Context, ids []int64) ([]store.AlertRuleRecord, error)
	AlertInstancesOfRules(ctx context.Context, ruleIDs []int64) (map[int64][]store.AlertInstance, error)
	CommitEvaluations(ctx context.Context, owner string, now time.Time, evals []store.RuleEvaluation) ([]int64, []store.AlertEvent, error)
	DeleteClosedAlerts(ctx context.Context, before time.Time) (int64, error)
}

// Store is everything an Engine needs (store.Store).
type Store interface {
	Leases
	RuleState
	Querier
}

// Options tune an Engine; the zero value gives the defaults.
type Options struct {
	// ID names this replica in the lease table (default host-pid-random).
	ID string
	// Tick is how often leases are renewed and due rules evaluated (default 1s).
	Tick time.Duration
	// MinLeaseTTL is the least a lease lasts from a renewal (default 3 ticks), for
	// rules whose interval is shorter.
	MinLeaseTTL time.Duration
	// ReplicaTTL is how long a replica counts as alive after its heartbeat
	// (default 10 ticks), for the fair share.
	ReplicaTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Registerer takes the engine's metrics; nil: none.
	Registerer prometheus.Registerer
	// ClosedRetention is how long an inactive or resolved instance is kept after
	// its last change (default 24h; its history is kept regardless). Every replica
	// deletes the expired ones once per CleanupEvery (default 1h).
	ClosedRetention, CleanupEvery time.Duration
}

func (o *Options) fill() {
	if o.ID == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.MinLeaseTTL <= 0 {
		o.MinLeaseTTL = 3 * o.Tick
	}
	if o.ReplicaTTL <= 0 {
		o.ReplicaTTL = 10 * o.Tick
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClosedRetention <= 0 {
		o.ClosedRetention = 24 * time.Hour
	}
	if o.CleanupEvery <= 0 {
		o.CleanupEvery = time.Hour
	}
}

// held is a rule this engine holds the lease of, with its instances.
type held struct {
	rule      *rule.Rule // nil: the stored definition could not be read (loadErr says why)
	loadErr   string
	version   int64
	nextEval  time.Time
	instances map[string]store.AlertInstance
}

// Engine evaluates the rules whose leases it holds. Tick is not safe for
// concurrent use; Run calls it from one goroutine.
type Engine struct {
	st  Store
	log *slog.Logger
	opt Options

	held        map[int64]*held
	m           metrics
	lastCleanup time.Time
}

type metrics struct {
	evaluations, failures, changes, tickErrors prometheus.Counter
	tickSeconds                                prometheus.Histogram
	held                                       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_alert_evaluations_total", Help: "Rule evaluations committed by this replica."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_alert_evaluation_failures_total", Help: "Rule evaluations whose query failed (the rule's health shows why)."}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_alert_state_changes_total", Help: "Alert state changes committed and announced by this replica."}),
		tickErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_alert_tick_errors_total", Help: "Evaluation ticks that failed against the database (retried on the next tick)."}),
		tickSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "amas_alert_tick_seconds", Help: "Time of one tick: leases, evaluation of the due rules, commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "amas_alert_rules_held", Help: "Rules whose evaluation lease this replica holds."}),
	}
	if reg != nil {
		reg.MustRegister(m.evaluations, m.failures, m.changes, m.tickErrors, m.tickSeconds, m.held)
	}
	return m
}

// New returns an engine; nothing runs until Run or Tick.
func New(st Store, log *slog.Logger, opt Options) *Engine {
	opt.fill()
	return &Engine{st: st, log: log.With("component", "alert-engine", "replica", opt.ID), opt: opt, held: map[int64]*held{},
		m: newMetrics(opt.Registerer)}
}

// ID is the replica's name in the lease table.
func (e *Engine) ID() string { return e.opt.ID }

// Run ticks until ctx ends, then gives its leases back so that another replica
// takes its rules at once. It returns nil when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.opt.Tick)
	defer t.Stop()
	for {
		if _, err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("alert evaluation tick failed", "err", err)
		}
		select {
		case <-ctx.Done():
			leaveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := e.st.LeaveAlertReplicas(leaveCtx, e.opt.ID); err != nil {
				e.log.Warn("release leases on stop", "err", err)
			}
			return nil
		case <-t.C:
		}
	}
}

// TickReport says what one tick did.
type TickReport struct {
	Held      int                // leases held after the tick
	Evaluated int                // rules evaluated
	Failed    int                // rules whose queries failed
	Written   []int64            // rules whose evaluation was committed
	Events    []store.AlertEvent // state changes written
	// Time spent renewing and balancing leases, querying, stepping the state
	// machines and committing.
	Balance, Query, Step, Commit time.Duration
}

// Tick renews and balances leases, then evaluates the held rules that are due.
func (e *Engine) Tick(ctx context.Context) (TickReport, error) {
	now := e.opt.Now()
	start := time.Now()
	rep, err := e.tick(ctx, now)
	e.m.tickSeconds.Observe(time.Since(start).Seconds())
	e.m.held.Set(float64(rep.Held))
	e.m.evaluations.Add(float64(len(rep.Written)))
	e.m.failures.Add(float64(rep.Failed))
	e.m.changes.Add(float64(len(rep.Events)))
	if err != nil {
		e.m.tickErrors.Inc()
	}
	return rep, err
}

func (e *Engine) tick(ctx context.Context, now time.Time) (TickReport, error) {
	start := time.Now()
	if err := e.balance(ctx, now); err != nil {
		return TickReport{Held: len(e.held)}, err
	}
	balanced := time.Since(start)
	rep, err := e.evaluateDue(ctx, now)
	rep.Held, rep.Balance = len(e.held), balanced
	if err != nil {
		return rep, err
	}
	return rep, e.cleanup(ctx, now)
}

// cleanup forgets, in the database and in memory, the closed instances whose
// last change is older than the retention.
func (e *Engine) cleanup(ctx context.Context, now time.Time) error {
	if now.Sub(e.lastCleanup) < e.opt.CleanupEvery {
		return nil
	}
	before := now.Add(-e.opt.ClosedRetention)
	n, err := e.st.DeleteClosedAlerts(ctx, before)
	if err != nil {
		return err
	}
	e.lastCleanup = now
	for _, h := range e.held {
		for fp, in := range h.instances {
			if !open(in.State) && in.UpdatedAt.Before(before) {
				delete(h.instances, fp)
			}
		}
	}
	if n > 0 {
		e.log.Info("closed alerts past retention deleted", "count", n, "before", before)
	}
	return nil
}

// balance renews the held leases, forgets the lost ones, takes free ones up to the
// fair share and gives back what exceeds it.
func (e *Engine) balance(ctx context.Context, now time.Time) error {
	rules, replicas, err := e.st.AlertReplicaHeartbeat(ctx, e.opt.ID, now, now.Add(-e.opt.ReplicaTTL))
	if err != nil {
		return err
	}
	renewed, err := e.st.RenewAlertLeases(ctx, e.opt.ID, now, e.opt.MinLeaseTTL)
	if err != nil {
		return err
	}
	keep := make(map[int64]*held, len(renewed))
	var reload, fresh []int64
	for _, hr := range renewed {
		h, ok := e.held[hr.RuleID]
		switch {
		case !ok:
			// Held in the table but not in memory (a restart within the lease): load it.
			h = &held{nextEval: hr.NextEvalAt}
			fresh = append(fresh, hr.RuleID)
		case h.version != hr.Version:
			reload = append(reload, hr.RuleID)
		}
		h.version = hr.Version
		keep[hr.RuleID] = h
	}
	for id := range e.held {
		if _, ok := keep[id]; !ok {
			e.log.Info("rule lease lost", "rule", id)
		}
	}
	e.held = keep
	share := (rules + max(replicas, 1) - 1) / max(replicas, 1)
	if want := share - len(e.held); want > 0 {
		claimed, err := e.st.ClaimAlertLeases(ctx, e.opt.ID, now, e.opt.MinLeaseTTL, want)
		if err != nil {
			return err
		}
		for _, hr := range claimed {
			e.held[hr.RuleID] = &held{version: hr.Version, nextEval: hr.NextEvalAt}
			fresh = append(fresh, hr.RuleID)
		}
		if len(claimed) > 0 {
			e.log.Info("rule leases taken", "count", len(claimed), "share", share)
		}
	}
	if err := e.load(ctx, append(reload, fresh...), fresh); err != nil {
		return err
	}
	if excess := len(e.held) - share; excess > 0 {
		return e.release(ctx, excess)
	}
	return nil
}

// load reads the definitions of ids and the stored instances of fresh (rules just
// taken over: their state continues from the database).
func (e *Engine) load(ctx context.Context, ids, fresh []int64) error {
	if len(ids) == 0 {
		return nil
	}
	recs, err := e.st.AlertRulesByID(ctx, ids)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		h := e.held[rec.ID]
		if h == nil {
			continue
		}
		r, err := rule.FromRecord(rec)
		if err == nil {
			r.Defaults()
			err = r.Validate()
		}
		if err != nil {
			e.log.Error("stored rule cannot be evaluated", "rule", rec.ID, "err", err)
			h.rule, h.loadErr = nil, err.Error()
			continue
		}
		h.rule, h.version = r, rec.Version
	}
	if len(fresh) == 0 {
		return nil
	}
	byRule, err := e.st.AlertInstancesOfRules(ctx, fresh)
	if err != nil {
		return err
	}
	for _, id := range fresh {
		h := e.held[id]
		h.instances = make(map[string]store.AlertInstance, len(byRule[id]))
		for _, in := range byRule[id] {
			h.instances[in.Fingerprint] = in
		}
	}
	return nil
}

// release gives back n leases, those due last, for replicas with fewer.
func (e *Engine) release(ctx context.Context, n int) error {
	ids := make([]int64, 0, len(e.held))
	for id := range e.held {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b int64) int { return e.held[b].nextEval.Compare(e.held[a].nextEval) })
	ids = ids[:n]
	if err := e.st.ReleaseAlertLeases(ctx, e.opt.ID, ids); err != nil {
		return err
	}
	for _, id := range ids {
		delete(e.held, id)
	}
	e.log.Info("rule leases released to other replicas", "count", n)
	return nil
}

// evaluateDue evaluates every held rule due at now and commits the results.
func (e *Engine) evaluateDue(ctx context.Context, now time.Time) (TickReport, error) {
	var (
		ids  []int64
		jobs []Job
	)
	for id, h := range e.held {
		if h.nextEval.After(now) {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var evals []store.RuleEvaluation
	for _, id := range ids {
		if h := e.held[id]; h.rule != nil {
			jobs = append(jobs, Job{Rule: h.rule, At: now})
		} else {
			// Unreadable definition: keep the schedule moving, change nothing.
			evals = append(evals, store.RuleEvaluation{RuleID: id, RuleVersion: h.version, NextEvalAt: now.Add(rule.DefaultInterval),
				Error: "the stored rule cannot be read: " + h.loadErr})
		}
	}
	if len(ids) == 0 {
		return TickReport{}, nil
	}
	start := time.Now()
	results, err := Evaluate(ctx, e.st, jobs)
	if err != nil {
		return TickReport{}, err
	}
	rep := TickReport{Evaluated: len(jobs), Query: time.Since(start)}
	start = time.Now()
	stepped := make(map[int64][]store.AlertInstance, len(jobs))
	for i, j := range jobs {
		h := e.held[j.Rule.ID]
		ev := store.RuleEvaluation{RuleID: j.Rule.ID, RuleVersion: h.version, NextEvalAt: nextEval(h.nextEval, j.Rule.Interval.D(), now)}
		if results[i].Err != nil {
			rep.Failed++
			ev.Error = results[i].Err.Error()
			e.log.Warn("rule evaluation failed", "rule", j.Rule.ID, "name", j.Rule.Name, "err", results[i].Err)
		} else {
			ev.Instances, ev.Changes = Step(j.Rule, h.instances, results[i].Groups, now)
			stepped[j.Rule.ID] = ev.Instances
		}
		evals = append(evals, ev)
	}
	rep.Step = time.Since(start)
	start = time.Now()
	written, events, err := e.st.CommitEvaluations(ctx, e.opt.ID, now, evals)
	rep.Commit = time.Since(start)
	if err != nil {
		return rep, err
	}
	rep.Events, rep.Written = events, written
	done := make(map[int64]bool, len(written))
	for _, id := range written {
		done[id] = true
	}
	for _, ev := range evals {
		if !done[ev.RuleID] {
			// The lease was lost, or the rule edited, while evaluating: another
			// replica (or the next tick, reloading) takes it from the database.
			delete(e.held, ev.RuleID)
			continue
		}
		h := e.held[ev.RuleID]
		h.nextEval = ev.NextEvalAt
		for _, in := range stepped[ev.RuleID] {
			h.instances[in.Fingerprint] = in
		}
	}
	return rep, nil
}

// nextEval keeps a rule on its interval grid from its previous due time, skipping
// the slots already missed.
func nextEval(due time.Time, interval time.Duration, now time.Time) time.Time {
	next := due.Add(interval)
	if !next.After(now) {
		next = now.Add(interval)
	}
	return next
}
