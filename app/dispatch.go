package app

import (
	"fmt"
	"os"
	"time"

	"github.com/amas-eye/amas/alerting/dispatch"
	"github.com/amas-eye/amas/resolvers"
)

// newDispatcher builds the alert role's notification dispatcher: every replica
// runs one, the one holding the dispatcher lock sends.
func (a *App) newDispatcher() *dispatch.Dispatcher {
	st := a.db.Store
	host, _ := os.Hostname()
	return dispatch.New(dispatch.Deps{
		Alerts: st, Settings: st, Log: st, Leader: st,
		Logger: a.log.With("component", "dispatch"), Registerer: a.reg,
	}, dispatch.Config{Holder: fmt.Sprintf("%s:%d", host, os.Getpid()), ExternalURL: a.cfg.ExternalURL})
}

// notifyResolvers are the dependencies of the notification fields of the API.
func (a *App) notifyResolvers() resolvers.NotifyDeps {
	st := a.db.Store
	return resolvers.NotifyDeps{
		Channels: st, Routing: st, Silences: st, Log: st, Alerts: st,
		Mutes: &dispatch.Muter{Settings: st, Alerts: st},
		// A test message is answered while the user waits: fewer, shorter retries.
		Tester: dispatch.NewTester(st, nil, dispatch.RetryPolicy{Attempts: 3, Initial: 500 * time.Millisecond},
			a.log.With("component", "dispatch")),
	}
}
