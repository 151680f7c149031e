package caddymodule

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawguard/clawguard/pairing"
)

// pairingMetrics are clawguard_pairing_requests_total{result} and
// clawguard_devices_paired, in the config's registry like the gate's.
type pairingMetrics struct {
	requests map[string]prometheus.Counter // by result, resolved once

	mu     sync.Mutex
	stores map[*pairing.Store]int // stores of this config's gates, with use counts
}

func newPairingMetrics(reg prometheus.Registerer) (*pairingMetrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "clawguard",
		Name:      "pairing_requests_total",
		Help:      "Device pairing outcomes: auto_approved, pending (queued for a person), approved, rejected, invalid (refused message).",
	}, []string{"result"})
	m := &pairingMetrics{requests: map[string]prometheus.Counter{}, stores: map[*pairing.Store]int{}}
	paired := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "clawguard",
		Name:      "devices_paired",
		Help:      "Paired devices holding a valid (unrevoked) token.",
	}, m.paired)
	if err := reg.Register(requests); err != nil {
		return nil, fmt.Errorf("registering clawguard_pairing_requests_total: %w", err)
	}
	if err := reg.Register(paired); err != nil {
		return nil, fmt.Errorf("registering clawguard_devices_paired: %w", err)
	}
	for _, r := range pairing.Results {
		m.requests[r] = requests.WithLabelValues(r)
	}
	return m, nil
}

func (m *pairingMetrics) result(r string) {
	if c, ok := m.requests[r]; ok {
		c.Inc()
	}
}

// track and untrack maintain the stores whose devices the gauge counts.
func (m *pairingMetrics) track(s *pairing.Store) {
	m.mu.Lock()
	m.stores[s]++
	m.mu.Unlock()
}

func (m *pairingMetrics) untrack(s *pairing.Store) {
	m.mu.Lock()
	if m.stores[s]--; m.stores[s] <= 0 {
		delete(m.stores, s)
	}
	m.mu.Unlock()
}

func (m *pairingMetrics) paired() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for s := range m.stores {
		n += s.ActiveDevices()
	}
	return float64(n)
}
