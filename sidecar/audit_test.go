package sidecar_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/clawguard/clawguard/audit"
	"github.com/clawguard/clawguard/sidecar"
)

// TestAuditFindingsGauge: the sidecar runs the security audit and exports
// its findings per severity; a permission loosened while it runs shows up
// at the next run.
func TestAuditFindingsGauge(t *testing.T) {
	d := startDaemon(t, `{}`, func(o *sidecar.DaemonOptions) {
		o.Background = audit.Monitor(300*time.Millisecond, audit.Options{StateDir: o.StateDir, SidecarConfig: o.ConfigPath, SidecarSocket: o.SocketPath}, nil)
	})
	gauge := func() map[audit.Severity]float64 {
		m := d.metrics()
		out := map[audit.Severity]float64{}
		for _, s := range audit.Severities {
			out[s] = counter(m, "clawguard_audit_findings", "severity", string(s))
		}
		return out
	}
	report := func() *audit.Report {
		rep, err := audit.Run(context.Background(), audit.Options{StateDir: d.state})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	want := func() map[audit.Severity]float64 {
		rep := report()
		out := map[audit.Severity]float64{}
		for _, s := range audit.Severities {
			out[s] = float64(rep.Count(s))
		}
		return out
	}
	waitGauge := func(what string) {
		t.Helper()
		var got, exp map[audit.Severity]float64
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			got, exp = gauge(), want()
			if equal(got, exp) {
				return
			}
		}
		t.Fatalf("%s: gauge %v, audit says %v", what, got, exp)
	}
	// A private state dir, then one opened to everyone: the gauge follows
	// each change at the next run, by exactly the one finding.
	if err := os.Chmod(d.state, 0o700); err != nil {
		t.Fatal(err)
	}
	waitGauge("state dir 0700")
	// The totals also count machine-wide findings (listeners of other
	// processes, e.g. parallel test packages), so the state dir's own
	// check is what must change.
	stateDirWarns := func() int {
		n := 0
		for _, f := range report().Findings {
			if f.Check == "fs.state_dir.perms" && f.Severity == audit.SeverityWarn {
				n++
			}
		}
		return n
	}
	private := stateDirWarns()
	if err := os.Chmod(d.state, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(d.state, 0o700) })
	waitGauge("state dir 0755")
	if open := stateDirWarns(); open != private+1 {
		t.Fatalf("a state dir others can read: fs.state_dir.perms warn findings %d → %d, want one more", private, open)
	}
}

func equal(a, b map[audit.Severity]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
