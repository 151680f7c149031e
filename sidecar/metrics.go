package sidecar

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Values of the result label of clawguard_exec_total.
const (
	resultSuccess   = "success"   // exit status 0
	resultFailure   = "failure"   // non-zero exit status
	resultTimeout   = "timeout"   // killed at the timeout
	resultCancelled = "cancelled" // the caller went away, or shutdown
	resultOOM       = "oom"       // killed for the memory limit
	resultDenied    = "denied"    // refused by the policy or the target
	resultError     = "error"     // could not run (bad request, sandbox failure)
)

var results = []string{resultSuccess, resultFailure, resultTimeout, resultCancelled, resultOOM, resultDenied, resultError}

type execMetrics struct {
	total    *prometheus.CounterVec
	duration prometheus.Histogram
}

func newExecMetrics(r prometheus.Registerer) (*execMetrics, error) {
	m := &execMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawguard_exec_total",
			Help: "Exec requests by target (sandbox, host, node) and result (success, failure, timeout, cancelled, oom, denied, error).",
		}, []string{"target", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clawguard_exec_duration_seconds",
			Help:    "Run time of exec requests that ran, container start included.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
	}
	for _, c := range []prometheus.Collector{m.total, m.duration} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	// Every series exists from the start, so rates and alerts see zeros.
	for _, t := range []string{TargetSandbox, TargetHost, TargetNode} {
		for _, res := range results {
			m.total.WithLabelValues(t, res)
		}
	}
	return m, nil
}

func resultOf(r RunResult) string {
	switch {
	case r.OOMKilled:
		return resultOOM
	case r.TimedOut:
		return resultTimeout
	case r.Cancelled:
		return resultCancelled
	case r.ExitCode == 0:
		return resultSuccess
	}
	return resultFailure
}
