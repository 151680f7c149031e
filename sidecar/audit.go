package sidecar

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawguard/clawguard/audit"
)

// DefaultAuditInterval is how often the sidecar re-runs the security audit.
const DefaultAuditInterval = 15 * time.Minute

// startAudit registers clawguard_audit_findings{severity} and keeps it
// current by running the security audit (clawguard audit, without the live
// probes) now and every AuditInterval until ctx ends, so that an alert can
// fire when someone loosens a permission or pastes a secret into a config.
func (o DaemonOptions) startAudit(ctx context.Context, reg prometheus.Registerer) error {
	if o.AuditInterval < 0 {
		return nil
	}
	interval := o.AuditInterval
	if interval == 0 {
		interval = DefaultAuditInterval
	}
	g, err := audit.NewGauge(reg)
	if err != nil {
		return err
	}
	opts := audit.Options{StateDir: o.StateDir, SidecarConfig: o.ConfigPath, SidecarSocket: o.SocketPath}
	go audit.RunEvery(ctx, interval, opts, g, func(err error) {
		o.Logger.Warn("security audit failed", "err", err)
	})
	return nil
}
