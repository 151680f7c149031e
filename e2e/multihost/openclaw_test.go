package multihost

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/clawguard/clawguard/openclaw/openclawtest"
)

// control calls the OpenClaw gateway double's control API, which listens
// on the gateway host's loopback only: from that host, with busybox wget in
// the openclaw container. A non-nil body is POSTed as JSON; the answer is
// decoded into out.
func (w *world) control(ctx context.Context, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute) // not wget -T: see admin
	defer cancel()
	argv := []string{"exec", w.container("openclaw"), "wget", "-qO-"}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		argv = append(argv, "--header", "Content-Type: application/json", "--post-data", string(b))
	}
	raw, err := docker(ctx, nil, nil, append(argv, fmt.Sprintf("http://127.0.0.1:%d%s", controlPort, path))...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(raw), out); err != nil {
		return fmt.Errorf("OpenClaw control %s: %w in %q", path, err, raw)
	}
	return nil
}

// openclawNodes returns the nodes connected to the OpenClaw gateway by
// display name.
func (w *world) openclawNodes(t *testing.T, ctx context.Context) map[string]openclawtest.NodeInfo {
	t.Helper()
	var res struct{ Nodes []openclawtest.NodeInfo }
	if err := w.control(ctx, "/nodes", nil, &res); err != nil {
		t.Fatal(err)
	}
	m := map[string]openclawtest.NodeInfo{}
	for _, n := range res.Nodes {
		m[n.DisplayName] = n
	}
	return m
}

// waitNodes polls the OpenClaw gateway's nodes until ok holds and returns
// them and how long that took; t fails after timeout.
func (w *world) waitNodes(t *testing.T, ctx context.Context, timeout time.Duration, what string, ok func(map[string]openclawtest.NodeInfo) bool) (map[string]openclawtest.NodeInfo, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		nodes := w.openclawNodes(t, ctx)
		if ok(nodes) {
			return nodes, time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("the OpenClaw gateway's nodes: not %s within %s: %+v", what, timeout, nodes)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// approvePairing approves the OpenClaw gateway's pairing requests of the
// devices displayed as names, once each has asked; t fails after timeout.
func (w *world) approvePairing(t *testing.T, ctx context.Context, timeout time.Duration, names ...string) {
	t.Helper()
	start := time.Now()
	for left := slices.Clone(names); len(left) > 0; time.Sleep(100 * time.Millisecond) {
		var res struct{ Pending []openclawtest.PairingRequest }
		if err := w.control(ctx, "/pairing", nil, &res); err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Pending {
			if i := slices.Index(left, r.DisplayName); i >= 0 {
				var ok struct{ OK bool }
				if err := w.control(ctx, "/pairing/approve", map[string]string{"request_id": r.RequestID}, &ok); err != nil || !ok.OK {
					t.Fatalf("approving %s: %v", r.DisplayName, err)
				}
				t.Logf("paired %s (device %.12s, role %s) after %s", r.DisplayName, r.DeviceID, r.Role, time.Since(start).Round(time.Millisecond))
				left = slices.Delete(left, i, i+1)
			}
		}
		if time.Since(start) > timeout {
			t.Fatalf("no pairing request from %q within %s (pending: %+v)", left, timeout, res.Pending)
		}
	}
}

// systemRun asks node (through the OpenClaw gateway, so through the gate
// and the tailnet) to run argv for agent "main", waiting at most timeout.
// It returns the gateway's answer, the run's result and how long it took.
func (w *world) systemRun(t *testing.T, ctx context.Context, node openclawtest.NodeInfo, timeout time.Duration, argv ...string) (openclawtest.InvokeResult, openclaw.SystemRunResult, time.Duration) {
	t.Helper()
	params, _ := json.Marshal(openclaw.SystemRunParams{Command: argv, AgentID: "main"})
	start := time.Now()
	var r openclawtest.InvokeResult
	if err := w.control(ctx, "/invoke", openclawtest.InvokeRequest{NodeID: node.NodeID, Command: openclaw.CommandSystemRun,
		Params: params, TimeoutMs: timeout.Milliseconds()}, &r); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	var res openclaw.SystemRunResult
	if r.OK {
		if err := json.Unmarshal(r.Payload, &res); err != nil {
			t.Fatalf("system.run payload %s: %v", r.Payload, err)
		}
	}
	return r, res, took
}
