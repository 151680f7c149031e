package audit

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Gauge is clawguard_audit_findings{severity}: the findings of the latest
// audit run by severity, exported by the sidecar.
type Gauge struct {
	vec *prometheus.GaugeVec
}

// NewGauge creates the gauge, with every severity at 0, and registers it.
func NewGauge(reg prometheus.Registerer) (*Gauge, error) {
	g := &Gauge{vec: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "clawguard_audit_findings",
		Help: "Findings of the latest security audit (clawguard audit) by severity: critical, warn or info.",
	}, []string{"severity"})}
	if err := reg.Register(g.vec); err != nil {
		return nil, err
	}
	for _, s := range Severities {
		g.vec.WithLabelValues(string(s)).Set(0)
	}
	return g, nil
}

// Set records a report's counts.
func (g *Gauge) Set(r *Report) {
	for _, s := range Severities {
		g.vec.WithLabelValues(string(s)).Set(float64(r.Count(s)))
	}
}

// RunEvery runs the audit at once and then every interval until ctx ends,
// setting g after each run. A run that fails (bad options) leaves g as it
// was and is passed to onError, which may be nil. It returns when ctx is
// done.
func RunEvery(ctx context.Context, interval time.Duration, opts Options, g *Gauge, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rep, err := Run(ctx, opts)
		switch {
		case err != nil && ctx.Err() == nil && onError != nil:
			onError(err)
		case err == nil:
			g.Set(rep)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DefaultMonitorInterval is how often Monitor re-runs the audit by default.
const DefaultMonitorInterval = 15 * time.Minute

// Monitor returns what the sidecar runs in the background (its
// DaemonOptions.Background): register clawguard_audit_findings{severity} in
// reg and keep it current by running the audit (without the live probes)
// now and every interval until ctx ends, so that an alert can fire when
// someone loosens a permission or pastes a secret into a config.
func Monitor(interval time.Duration, opts Options, onError func(error)) func(context.Context, prometheus.Registerer) error {
	return func(ctx context.Context, reg prometheus.Registerer) error {
		g, err := NewGauge(reg)
		if err != nil {
			return err
		}
		go RunEvery(ctx, interval, opts, g, onError)
		return nil
	}
}
