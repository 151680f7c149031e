package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/openclaw"
	"github.com/clawguard/clawguard/openclaw/openclawtest"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
)

// nodeHost is a `clawguard node` run in this process for a test.
type nodeHost struct {
	dir    string
	stderr *syncBuffer
	done   chan int
}

// startNode runs `clawguard node args… --state-dir dir` until the test ends.
func startNode(t *testing.T, dir string, args ...string) *nodeHost {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &nodeHost{dir: dir, stderr: &syncBuffer{}, done: make(chan int, 1)}
	args = append([]string{"node", "--state-dir", dir, "--log-format", "text", "--audit-interval", "0"}, args...)
	go func() {
		h.done <- run(ctx, &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: h.stderr}, args)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-h.done:
			if code != 0 {
				t.Errorf("clawguard node exited %d; stderr:\n%s", code, h.stderr.String())
			}
		case <-time.After(90 * time.Second):
			t.Errorf("clawguard node did not stop; stderr:\n%s", h.stderr.String())
		}
	})
	return h
}

// metric reads one sample of the node's sidecar /metrics over its socket.
func (h *nodeHost) metric(t *testing.T, sample string) float64 {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(h.dir, wire.FileSidecarSocket))
	}}}
	resp, err := hc.Get("http://sidecar/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no sample %s in /metrics:\n%s", sample, body)
	return 0
}

// TestNodeServesOpenClaw runs `clawguard node` against the OpenClaw
// gateway double: pairing, system.which, system.run allowed on this host,
// asked and approved in clawguard, asked and denied, timed out, sandboxed
// for an agent without node exec, and a reconnect after the gateway
// restarts that needs no new pairing.
func TestNodeServesOpenClaw(t *testing.T) {
	t.Setenv(vault.PassphraseEnv, "node test")
	const gatewayToken = "openclaw-shared-token-for-the-test"
	t.Setenv("NODE_TEST_GATEWAY_TOKEN", gatewayToken)
	dcli := sandboxtest.Client(t)
	dir := t.TempDir()
	writeFile := func(name, content string) {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(filepath.Join(dir, wire.FileSidecarConfig), `{"instance": "`+sandboxtest.Instance(t, dcli)+`", "node_exec": {"timeout": "20s"},
	  "sandboxes": {"*": {"image": "`+sandboxtest.TestImage(t, dcli)+`"}}}`)
	writeFile(approvals.DefaultPath(dir), `{"version": 1, "defaults": {"mode": "ask", "ask_timeout": "1m"},
	  "agents": {
	    "main": {"node": true, "allow": [{"path": "/usr/bin/id"}, {"path": "/usr/bin/sleep"}]},
	    "sbx":  {"mode": "allowlist", "allow": [{"path": "/bin/busybox", "args": "echo 'hello from .*'"}]}
	  }}`)

	gw := openclawtest.Start(t, openclawtest.Options{Token: gatewayToken})
	h := startNode(t, dir, "--gateway", gw.URL(), "--token", "{env.NODE_TEST_GATEWAY_TOKEN}", "--display-name", "build-box")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Pairing: the gateway holds the device until an operator approves.
	req, err := gw.WaitPairing(ctx)
	if err != nil {
		t.Fatalf("no pairing request: %v\n%s", err, h.stderr)
	}
	if req.DisplayName != "build-box" {
		t.Errorf("pairing request: %+v", req)
	}
	if err := gw.Approve(req.RequestID); err != nil {
		t.Fatal(err)
	}
	node, err := gw.WaitNode(ctx, req.DeviceID, nil)
	if err != nil {
		t.Fatalf("node did not connect after approval: %v\n%s", err, h.stderr)
	}
	v, err := vault.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The gateway counts the node connected once it sent hello-ok; the
	// node stores the token when it reads it.
	var tok []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if tok, err = v.Get(vaultDeviceToken); err == nil {
			break
		}
	}
	if err != nil || string(tok) != gw.DeviceToken(node.NodeID, openclaw.RoleNode) {
		t.Fatalf("device token in the vault: %q, %v", tok, err)
	}
	for _, secret := range []string{gatewayToken, gw.DeviceToken(node.NodeID, openclaw.RoleNode)} {
		if strings.Contains(h.stderr.String(), secret) {
			t.Fatal("a secret is in the node's log")
		}
	}

	invoke := func(command string, params any, timeout time.Duration) openclawtest.InvokeResult {
		t.Helper()
		r, err := gw.Invoke(ctx, node.NodeID, command, params, timeout, "")
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, h.stderr)
		}
		return r
	}
	runResult := func(r openclawtest.InvokeResult) openclaw.SystemRunResult {
		t.Helper()
		if !r.OK {
			t.Fatalf("system.run failed: %+v", r.Error)
		}
		var res openclaw.SystemRunResult
		if err := json.Unmarshal(r.Payload, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	// pendingAsk waits for the one ask in clawguard's queue.
	pendingAsk := func() approvals.Approval {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			r := runCLI(nil, nil, "approvals", "list", "--json", "--state-dir", dir)
			var out struct{ Approvals []approvals.Approval }
			if r.code == 0 && json.Unmarshal([]byte(r.stdout), &out) == nil && len(out.Approvals) == 1 && out.Approvals[0].Waiters == 1 {
				return out.Approvals[0]
			}
		}
		t.Fatal("no pending ask in clawguard")
		return approvals.Approval{}
	}

	// system.which finds what this host's node_exec PATH has.
	r := invoke(openclaw.CommandSystemWhich, openclaw.SystemWhichParams{Bins: []string{"id", "no-such-program-here"}}, 10*time.Second)
	var which openclaw.SystemWhichResult
	if !r.OK || json.Unmarshal(r.Payload, &which) != nil || which.Bins["id"] != "/usr/bin/id" || len(which.Bins) != 1 {
		t.Fatalf("system.which: %+v %s", r, r.Payload)
	}

	// An allowlisted program runs on this host.
	res := runResult(invoke(openclaw.CommandSystemRun, openclaw.SystemRunParams{Command: []string{"/usr/bin/id", "-u"}, AgentID: "main"}, 20*time.Second))
	if !res.Success || res.ExitCode == nil || *res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != strconv.Itoa(os.Getuid()) {
		t.Fatalf("allowed system.run: %+v", res)
	}

	// An unknown program asks; a person allows it in clawguard's CLI.
	ch := make(chan openclawtest.InvokeResult, 1)
	go func() {
		r, _ := gw.Invoke(ctx, node.NodeID, openclaw.CommandSystemRun, openclaw.SystemRunParams{Command: []string{"/usr/bin/uname", "-s"}, AgentID: "main"}, time.Minute, "")
		ch <- r
	}()
	a := pendingAsk()
	if a.Command != "/usr/bin/uname -s" || a.Identity != "openclaw:"+gw.Addr() || a.Agent != "main" {
		t.Fatalf("the ask: %+v", a)
	}
	wantCode(t, runCLI(nil, nil, "approvals", "allow-once", a.ID, "--state-dir", dir), 0)
	if res := runResult(<-ch); strings.TrimSpace(res.Stdout) != "Linux" {
		t.Fatalf("approved system.run: %+v", res)
	}

	// Asked and denied: OpenClaw's SYSTEM_RUN_DENIED, and exec.denied.
	go func() {
		r, _ := gw.Invoke(ctx, node.NodeID, openclaw.CommandSystemRun, openclaw.SystemRunParams{Command: []string{"/usr/bin/whoami"}, AgentID: "main", RunID: "run-denied"}, time.Minute, "")
		ch <- r
	}()
	a = pendingAsk()
	wantCode(t, runCLI(nil, nil, "approvals", "deny", a.ID, "--state-dir", dir), 0)
	if r := <-ch; r.OK || !openclaw.IsDenied(r.Error) {
		t.Fatalf("denied system.run: %+v", r)
	}
	if !deniedEvent(t, gw, "run-denied") {
		t.Fatalf("no exec.denied event for run-denied: %+v", gw.Received(openclaw.MethodNodeEvent))
	}

	// A command past the invoke's timeout is killed and says so.
	start := time.Now()
	res = runResult(invoke(openclaw.CommandSystemRun, openclaw.SystemRunParams{Command: []string{"/usr/bin/sleep", "30"}, AgentID: "main", TimeoutMs: ptr(int64(1000))}, 15*time.Second))
	if !res.TimedOut || res.Success || res.ExitCode != nil || time.Since(start) > 10*time.Second {
		t.Fatalf("timed out system.run after %s: %+v", time.Since(start), res)
	}

	// An agent without node exec runs in its sandbox: busybox's echo is
	// what its allowlist admits, and this host has no /bin/busybox echo.
	res = runResult(invoke(openclaw.CommandSystemRun, openclaw.SystemRunParams{Command: []string{"echo", "hello from a sandbox"}, AgentID: "sbx", SessionKey: "agent:sbx:main"}, time.Minute))
	if strings.TrimSpace(res.Stdout) != "hello from a sandbox" || !res.Success {
		t.Fatalf("sandboxed system.run: %+v", res)
	}

	if got := h.metric(t, "clawguard_openclaw_gateway_connected"); got != 1 {
		t.Errorf("clawguard_openclaw_gateway_connected = %v", got)
	}
	if got := h.metric(t, `clawguard_openclaw_invokes_total{command="system.run",result="denied"}`); got != 1 {
		t.Errorf("denied system.run count = %v", got)
	}

	// The gateway restarts: the node comes back on its device token,
	// without a new pairing request, and serves again.
	gw.Stop()
	if err := gw.Restart(); err != nil {
		t.Fatal(err)
	}
	back, err := gw.WaitNode(ctx, node.NodeID, func(n openclawtest.NodeInfo) bool { return n.ConnID != node.ConnID })
	if err != nil {
		t.Fatalf("no reconnect after the gateway restarted: %v\n%s", err, h.stderr)
	}
	if p := gw.Pending(); len(p) != 0 || back.Connects < 2 {
		t.Fatalf("after the restart: pairing requests %+v, connects %d", p, back.Connects)
	}
	if res := runResult(invoke(openclaw.CommandSystemRun, openclaw.SystemRunParams{Command: []string{"/usr/bin/id", "-u"}, AgentID: "main"}, 20*time.Second)); !res.Success {
		t.Fatalf("system.run after the reconnect: %+v", res)
	}
}

func deniedEvent(t *testing.T, gw *openclawtest.Server, runID string) bool {
	t.Helper()
	for _, ev := range gw.Received(openclaw.MethodNodeEvent) {
		var p openclaw.NodeEventParams
		if json.Unmarshal(ev.Params, &p) != nil || p.Event != "exec.denied" || p.PayloadJSON == nil {
			continue
		}
		var payload openclaw.ExecEventPayload
		if json.Unmarshal([]byte(*p.PayloadJSON), &payload) == nil && payload.RunID == runID {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

// TestNodeRefusesSecretsInArgv: a secret written out on the command line
// (visible to every user in ps) is refused before anything starts.
func TestNodeRefusesSecretsInArgv(t *testing.T) {
	dir := t.TempDir()
	for _, flag := range []string{"--token", "--password", "--gate-token"} {
		r := runCLI(nil, nil, "node", "--state-dir", dir, "--gateway", "ws://127.0.0.1:1", flag, "a-literal-secret-0123456789")
		wantCode(t, r, 2, flag, "placeholder")
		if strings.Contains(r.stderr, "a-literal-secret-0123456789") {
			t.Errorf("%s: the refusal repeats the secret: %s", flag, r.stderr)
		}
	}
	wantCode(t, runCLI(nil, nil, "node", "--state-dir", dir, "--gateway", "ws://127.0.0.1:1", "--gateway-direct"), 2, "--gateway-direct")
	wantCode(t, runCLI(nil, nil, "node", "--state-dir", dir), 2, "--gateway")
}
