package rollup

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	minutes           prometheus.Counter
	lag               prometheus.Gauge
	droppedPartitions prometheus.Counter
	errors            prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		minutes: f.NewCounter(prometheus.CounterOpts{
			Name: "amas_rollup_minutes_total",
			Help: "Minutes of samples rolled up into samples_1m and samples_1h.",
		}),
		lag: f.NewGauge(prometheus.GaugeOpts{
			Name: "amas_rollup_lag_seconds",
			Help: "How far the rollups trail now: the age of the oldest minute still pending roll-up, 0 when none is.",
		}),
		droppedPartitions: f.NewCounter(prometheus.CounterOpts{
			Name: "amas_retention_dropped_partitions_total",
			Help: "Daily raw samples partitions dropped by retention.",
		}),
		errors: f.NewCounter(prometheus.CounterOpts{
			Name: "amas_rollup_errors_total",
			Help: "Failed rollup, partition or retention runs.",
		}),
	}
}
