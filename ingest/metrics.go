package ingest

import "github.com/prometheus/client_golang/prometheus"

type pipelineMetrics struct {
	committed     prometheus.Counter
	rejected      prometheus.Counter
	writeErrors   prometheus.Counter
	seriesCreated prometheus.Counter
	batchSeconds  prometheus.Histogram
}

func newPipelineMetrics(reg prometheus.Registerer, queued func() float64) *pipelineMetrics {
	m := &pipelineMetrics{
		committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_ingest_points_committed_total", Help: "Points committed to the database."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_ingest_points_overloaded_total", Help: "Points refused with back-pressure because the write queue was full."}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_ingest_batch_errors_total", Help: "Failed batch writes (each is retried unless the data was rejected)."}),
		seriesCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amas_ingest_series_resolved_total", Help: "Series ids looked up or created because they were not cached."}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "amas_ingest_batch_write_seconds", Help: "Time to write one batch (series lookup, COPY, commit).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.committed, m.rejected, m.writeErrors, m.seriesCreated, m.batchSeconds,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "amas_ingest_queue_points", Help: "Points accepted and waiting to be committed."}, queued))
	}
	return m
}
