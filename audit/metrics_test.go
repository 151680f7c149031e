package audit_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clawguard/clawguard/audit"
)

// TestGaugeExportsFindings runs the periodic audit the sidecar uses and
// reads clawguard_audit_findings back as Prometheus text.
func TestGaugeExportsFindings(t *testing.T) {
	f := newFixture(t)
	f.write(f.state, "approvals.json", `{"version": 1, "defaults": {"mode": "full"}, "agents": {"dev": {"mode": "full"}}}`, 0o644)
	reg := prometheus.NewRegistry()
	g, err := audit.NewGauge(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		audit.RunEvery(ctx, 20*time.Millisecond, f.opts, g, func(err error) { t.Error(err) })
		close(done)
	}()
	want := map[string]float64{"critical": 1, "warn": 2, "info": 0} // mode full (default), mode full (dev), approvals.json 0644
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := scrape(t, reg)
		if equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gauge %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The next run sees the fix.
	f.write(f.state, "approvals.json", `{"version": 1}`, 0o600)
	want = map[string]float64{"critical": 0, "warn": 0, "info": 0}
	for !equal(scrape(t, reg), want) {
		if time.Now().After(deadline) {
			t.Fatalf("gauge %v after the fix, want %v", scrape(t, reg), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	if _, err := audit.NewGauge(reg); err == nil {
		t.Fatal("registering twice must fail")
	}
	promtoolCheck(t, reg)
}

func equal(a, b map[string]float64) bool {
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

// scrape renders reg as Prometheus text and parses it back with expfmt.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	mf := parsed["clawguard_audit_findings"]
	if mf == nil {
		t.Fatal("no clawguard_audit_findings")
	}
	for _, m := range mf.Metric {
		out[m.Label[0].GetValue()] = m.Gauge.GetValue()
	}
	return out
}

// promtoolCheck runs `promtool check metrics` on the registry's text, if
// promtool is installed.
func promtoolCheck(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed; skipping its lint")
		return
	}
	mfs, _ := reg.Gather()
	var buf bytes.Buffer
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&buf, mf)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = &buf
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
