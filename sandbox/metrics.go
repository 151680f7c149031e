package sandbox

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the sandbox manager; bounded labels only (none).
type metrics struct {
	start         prometheus.Histogram
	startFailures prometheus.Counter
	agentFailures prometheus.Counter
	running       prometheus.GaugeFunc
}

func newMetrics(m *Manager) *metrics {
	return &metrics{
		start: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clawguard_sandbox_start_seconds",
			Help:    "Time to create and start a sandbox container.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30},
		}),
		startFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawguard_sandbox_start_failures_total",
			Help: "Sandbox containers that failed to be created or started.",
		}),
		agentFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clawguard_sandbox_agent_failures_total",
			Help: "Sandboxes removed because their exec agent died or broke the protocol.",
		}),
		running: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "clawguard_sandboxes_running",
			Help: "Sandbox containers this sidecar owns, warm pool included.",
		}, func() float64 {
			m.mu.Lock()
			defer m.mu.Unlock()
			return float64(len(m.boxes))
		}),
	}
}

func (mt *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{mt.start, mt.startFailures, mt.agentFailures, mt.running} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
