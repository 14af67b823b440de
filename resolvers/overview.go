package resolvers

import (
	"context"
	"time"

	"github.com/amas-eye/amas/alerting"
	"github.com/amas-eye/amas/overview"
	"github.com/amas-eye/amas/store"
)

// OverviewFigures is what the overview page reads (store.Store).
type OverviewFigures interface {
	overview.Figures
	AlertTrend(ctx context.Context, from, to time.Time) ([]store.AlertTrendBucket, error)
	TopHosts(ctx context.Context, res store.HostResource, since time.Time, limit int) ([]store.HostValue, error)
}

// topHostsWindow is how old a host's newest value may be to be ranked: a host
// that stopped reporting drops out of the lists rather than keeping its last figure.
const topHostsWindow = 10 * time.Minute

// overviewSeverities are listed in openAlerts even when nothing fires at them.
var overviewSeverities = []alerting.Severity{alerting.SeverityCritical, alerting.SeverityWarning, alerting.SeverityInfo}

func resourceUnit(res store.HostResource) string {
	if res == store.ResourceNetwork {
		return "bytes/s"
	}
	return "percent"
}
