package multihost

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/audit"
	"github.com/clawguard/clawguard/tsnet"
)

// adminURL is Caddy's admin endpoint inside the gateway host.
const adminURL = "http://127.0.0.1:2019"

// admin GETs path from the gateway host's Caddy admin endpoint, from
// inside that host. (Not wget -T: Debian's static busybox 1.35 wget
// crashes with it; the context bounds the call.)
func (w *world) admin(t *testing.T, ctx context.Context, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := docker(ctx, nil, nil, "exec", w.container("gateway"), "wget", "-qO-", adminURL+path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// peers returns the node hosts the gate watches (GET /tailnet/peers) by
// name.
func (w *world) peers(t *testing.T, ctx context.Context) map[string]tsnet.PeerHealth {
	t.Helper()
	var list []tsnet.PeerHealth
	if err := json.Unmarshal([]byte(w.admin(t, ctx, "/tailnet/peers")), &list); err != nil {
		t.Fatalf("GET /tailnet/peers: %v", err)
	}
	m := map[string]tsnet.PeerHealth{}
	for _, p := range list {
		m[p.Peer] = p
	}
	return m
}

// waitPeer waits until the gate reports node host name in state and
// returns its health and how long that took; t fails after timeout.
func (w *world) waitPeer(t *testing.T, ctx context.Context, name, state string, timeout time.Duration) (tsnet.PeerHealth, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		p, ok := w.peers(t, ctx)[name]
		if ok && p.State == state {
			return p, time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("the gate's peer %s: not %s within %s: %+v (present %t)", name, state, timeout, p, ok)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricLines returns the samples of the gateway's /metrics whose names
// start with prefix.
func (w *world) metricLines(t *testing.T, ctx context.Context, prefix string) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(w.admin(t, ctx, "/metrics")) {
		if strings.HasPrefix(line, prefix) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// auditDown runs `clawguard audit --deep` in the gateway host and returns
// the findings of its check of the watched node hosts (deep.tailnet_peers),
// one per node host it finds down.
func (w *world) auditDown(t *testing.T, ctx context.Context) []audit.Finding {
	t.Helper()
	// Exit status 1 means a critical finding somewhere: the report says.
	out, err := docker(ctx, nil, nil, "exec", w.container("gateway"),
		"clawguard", "audit", "--deep", "--json", "--config", stateDir+"/Caddyfile")
	if err != nil && exitCode(err) != 1 {
		t.Fatal(err)
	}
	var rep audit.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("clawguard audit --deep --json: %v in %q", err, out)
	}
	var found []audit.Finding
	for _, f := range rep.Findings {
		if f.Check == "deep.tailnet_peers" {
			found = append(found, f)
		}
	}
	return found
}

// wantAuditDown wants the audit to find exactly the node hosts down
// (warnings that name each).
func (w *world) wantAuditDown(t *testing.T, ctx context.Context, down ...nodeHost) {
	t.Helper()
	found := w.auditDown(t, ctx)
	for _, f := range found {
		t.Logf("clawguard audit --deep: %s %s: %s", f.Severity, f.Check, f.Finding)
	}
	if len(found) != len(down) {
		t.Errorf("clawguard audit --deep: %d deep.tailnet_peers findings, want %d (for %v)", len(found), len(down), down)
	}
	for _, n := range down {
		if !slices.ContainsFunc(found, func(f audit.Finding) bool {
			return f.Severity == audit.SeverityWarn && strings.HasPrefix(f.Finding, "node host "+n.name+" ")
		}) {
			t.Errorf("clawguard audit --deep: no warning that node host %s is down", n.name)
		}
	}
}
