package dispatch

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	notifications *prometheus.CounterVec
	attempts      *prometheus.CounterVec
	ackedRepeats  prometheus.Counter
	roundErrors   prometheus.Counter
	groups        prometheus.Gauge
	leader        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		notifications: f.NewCounterVec(prometheus.CounterOpts{
			Name: "amas_notifications_total",
			Help: "Notifications delivered (status sent) or given up (status failed), by channel type.",
		}, []string{"type", "status"}),
		attempts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "amas_notification_attempts_total",
			Help: "Delivery attempts by channel type and result (ok, retryable, permanent).",
		}, []string{"type", "result"}),
		ackedRepeats: f.NewCounter(prometheus.CounterOpts{
			Name: "amas_notification_acked_repeats_total",
			Help: "Repeat notifications not sent because every firing alert of the group was acknowledged.",
		}),
		roundErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "amas_dispatch_errors_total",
			Help: "Dispatch rounds or leadership attempts that failed.",
		}),
		groups: f.NewGauge(prometheus.GaugeOpts{
			Name: "amas_dispatch_groups",
			Help: "Aggregation groups the leading dispatcher holds.",
		}),
		leader: f.NewGauge(prometheus.GaugeOpts{
			Name: "amas_dispatch_leader",
			Help: "1 while this replica is the dispatching leader.",
		}),
	}
}
