package app

import (
	"context"

	"github.com/amas-eye/amas/alerting/engine"
	"github.com/amas-eye/amas/alerting/events"
	"github.com/amas-eye/amas/live"
	"github.com/amas-eye/amas/resolvers"
)

// alertingParts are the rules half of alerting: the evaluator (alert role) and
// the live alert events of the API (api role).
type alertingParts struct {
	events *events.Hub
}

func (a *App) initAlerting() {
	if a.cfg.HasRole("api") {
		st := a.db.Store
		a.alerting.events = events.New(events.ConnectFunc(live.PoolConnector(st.Pool())), st,
			a.log.With("component", "alert-events"), events.Options{})
	}
}

// startAlerting runs the alert events hub (api role) and the rule evaluator (alert
// role); both stop when ctx ends, the evaluator giving its rule leases back.
func (a *App) startAlerting(ctx context.Context) {
	if a.alerting.events != nil {
		a.goRun("alert-events", func() error { return a.alerting.events.Run(ctx) })
	}
	if a.cfg.HasRole("alert") {
		e := engine.New(a.db.Store, a.log, engine.Options{Registerer: a.reg})
		a.log.Info("alert rule evaluation started", "replica", e.ID())
		a.goRun("alert-engine", func() error { return e.Run(ctx) })
	}
}

// ruleResolvers are the dependencies of the rule and alert fields of the API.
func (a *App) ruleResolvers() resolvers.RuleDeps {
	st := a.db.Store
	deps := resolvers.RuleDeps{Rules: st, Alerts: st, Querier: st}
	if a.alerting.events != nil {
		deps.Events = a.alerting.events
	}
	return deps
}
