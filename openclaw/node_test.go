package openclaw_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/clawguard/clawguard/openclaw/openclawtest"
)

// TestPairingThenDeviceToken: a new device is held at pairing with the
// gateway's request id, connects once approved and keeps the device token
// of hello-ok; a later node with the same key and store but no shared
// token connects with that device token, without a new pairing. Neither
// the shared token nor the device token nor a signature reaches the log.
func TestPairingThenDeviceToken(t *testing.T) {
	const shared = "shared-S3cret-token"
	gw := openclawtest.Start(t, openclawtest.Options{Token: shared})
	key, store := newKey(t), &memTokens{}
	r := run(t, &openclaw.Node{Gateway: gw.URL(), Token: shared, Identity: key, DeviceTokens: store,
		DisplayName: "build-box", Handler: echo})

	pairing := r.states.wait(t, "pairing", func(s openclaw.State) bool { return s.Phase == openclaw.PhasePairing })
	reqs := gw.Pending()
	if len(reqs) != 1 || pairing.PairingRequestID != reqs[0].RequestID || reqs[0].DeviceID != r.node.ID() || reqs[0].Role != "node" {
		t.Fatalf("pairing state %+v, gateway requests %+v", pairing, reqs)
	}
	var ce *openclaw.ConnectError
	if !errors.As(pairing.Err, &ce) || ce.Detail != openclaw.DetailPairingRequired || ce.Code != openclaw.CodeNotPaired {
		t.Fatalf("pairing error: %v", pairing.Err)
	}
	if tok, _ := store.get(); tok != "" {
		t.Fatalf("a device token before approval: %q", tok)
	}
	if err := gw.Approve(reqs[0].RequestID); err != nil {
		t.Fatal(err)
	}
	info, err := gw.WaitNode(ctxT(t), r.node.ID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.ClientID != "node-host" || info.Mode != "node" || info.Protocol != openclaw.ProtocolVersion ||
		info.AuthMethod != "token" || info.DisplayName != "build-box" || !slices.Equal(info.Commands, openclaw.DefaultCommands) ||
		!slices.Equal(info.Caps, []string{"system"}) {
		t.Errorf("registered node: %+v", info)
	}
	r.states.wait(t, "connected", func(s openclaw.State) bool { return s.Phase == openclaw.PhaseConnected && s.Protocol == 4 })
	issued := gw.DeviceToken(r.node.ID(), "node")
	if tok, _ := store.get(); issued == "" || tok != issued {
		t.Fatalf("stored device token %q, issued %q", tok, issued)
	}
	if err := r.stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}

	r2 := run(t, &openclaw.Node{Gateway: gw.URL(), Identity: key, DeviceTokens: store, Handler: echo})
	info, err = gw.WaitNode(ctxT(t), r2.node.ID(), func(i openclawtest.NodeInfo) bool { return i.Connects == 2 })
	if err != nil {
		t.Fatal(err)
	}
	if info.AuthMethod != "device-token" || len(gw.Pending()) != 0 {
		t.Errorf("reconnect with the device token: auth %s, pending %+v", info.AuthMethod, gw.Pending())
	}
	if _, saves := store.get(); saves != 1 {
		t.Errorf("device token saved %d times, want once", saves)
	}
	for _, l := range []string{r.log.String(), r2.log.String()} {
		for _, secret := range []string{shared, issued} {
			if strings.Contains(l, secret) {
				t.Errorf("a secret in the node log:\n%s", l)
			}
		}
		if strings.Contains(l, "signature") {
			t.Errorf("the log mentions a signature:\n%s", l)
		}
	}
}

// TestWrongDeviceTokenRefused: a device token the gateway did not issue is
// refused as OpenClaw refuses it (AUTH_DEVICE_TOKEN_MISMATCH); the node
// forgets it, tries without, and stops on the gateway's "token missing"
// (a configuration error) instead of retrying for ever.
func TestWrongDeviceTokenRefused(t *testing.T) {
	gw := openclawtest.Start(t, openclawtest.Options{Token: "shared"})
	key := newKey(t)
	first, _ := pairedNode(t, gw, &openclaw.Node{Gateway: gw.URL(), Token: "shared", Identity: key, Handler: echo})
	first.stop()

	store := &memTokens{token: "not-the-issued-token"}
	r := run(t, &openclaw.Node{Gateway: gw.URL(), Identity: key, DeviceTokens: store, Handler: echo})
	var err error
	select {
	case err = <-r.done:
	case <-time.After(15 * time.Second):
		t.Fatal("Run still retrying")
	}
	var ce *openclaw.ConnectError
	if !errors.As(err, &ce) || ce.Detail != openclaw.DetailAuthTokenMissing || !ce.Permanent() {
		t.Fatalf("Run = %v, want the permanent AUTH_TOKEN_MISSING", err)
	}
	st := r.states.wait(t, "device token refused", func(s openclaw.State) bool {
		return errors.As(s.Err, &ce) && ce.Detail == openclaw.DetailAuthDeviceTokenMismatch
	})
	if !strings.Contains(st.Err.Error(), "device token mismatch") {
		t.Errorf("refusal: %v", st.Err)
	}
	if tok, _ := store.get(); tok != "" {
		t.Errorf("refused device token kept: %q", tok)
	}
	if strings.Contains(r.log.String(), "not-the-issued-token") {
		t.Error("the device token reached the log")
	}
	r.done <- context.Canceled // Run has returned; the cleanup's stop reads this
}

// handler is a test Handler for the system commands.
type handler struct {
	calls atomic.Int32
	run   func(ctx context.Context, p openclaw.SystemRunParams) openclaw.Result
}

func (h *handler) Invoke(ctx context.Context, inv openclaw.Invoke) openclaw.Result {
	h.calls.Add(1)
	switch inv.Command {
	case openclaw.CommandSystemWhich:
		p, err := openclaw.ParseSystemWhich(inv.Params)
		if err != nil {
			return openclaw.ErrInvalidParams(err)
		}
		found := map[string]string{}
		for _, b := range p.Bins {
			if b == "sh" {
				found[b] = "/bin/sh"
			}
		}
		return openclaw.Succeed(openclaw.SystemWhichResult{Bins: found})
	case openclaw.CommandSystemRunPrepare:
		p, err := openclaw.ParseSystemRunPrepare(inv.Params)
		if err != nil {
			return openclaw.ErrInvalidParams(err)
		}
		return openclaw.Succeed(openclaw.NewPlan(p, p.Command, p.Cwd))
	case openclaw.CommandSystemRun:
		p, err := openclaw.ParseSystemRun(inv.Params)
		if err != nil {
			return openclaw.ErrInvalidParams(err)
		}
		if h.run != nil {
			return h.run(ctx, p)
		}
		if p.Command[0] == "rm" {
			return openclaw.Denied(p, openclaw.DenyAllowlistMiss, "allowlist miss")
		}
		code := 0
		return openclaw.Finished(p, openclaw.SystemRunResult{ExitCode: &code, Success: true, Stdout: strings.Join(p.Command[1:], " ") + "\n"})
	}
	return openclaw.Fail(openclaw.CodeUnavailable, "command not supported")
}

// TestSystemCommands: system.which, system.run.prepare and system.run
// through a Handler, as the gateway sees them; a refused run is OpenClaw's
// SYSTEM_RUN_DENIED after an exec.denied event; a command the node does
// not serve is refused without reaching the Handler, even when a gateway
// sends it regardless.
func TestSystemCommands(t *testing.T) {
	gw := openclawtest.Start(t, openclawtest.Options{})
	h := &handler{}
	r, info := pairedNode(t, gw, &openclaw.Node{Gateway: gw.URL(), Identity: newKey(t), Handler: h})
	ctx := ctxT(t)
	id := info.NodeID

	res, err := gw.Invoke(ctx, id, "system.which", map[string]any{"bins": []string{"sh", "nope"}}, 5*time.Second, "")
	if err != nil || !res.OK || string(res.Payload) != `{"bins":{"sh":"/bin/sh"}}` {
		t.Errorf("system.which: %+v %v", res, err)
	}

	res, err = gw.Invoke(ctx, id, "system.run.prepare", map[string]any{"command": []string{"/bin/sh", "-lc", "echo hi"}, "rawCommand": "echo hi", "cwd": "/tmp"}, 5*time.Second, "prep-1")
	var prep openclaw.SystemRunPrepareResult
	if err != nil || !res.OK || json.Unmarshal(res.Payload, &prep) != nil || prep.CmdText != "echo hi" || prep.Plan.CommandText != "echo hi" || *prep.Plan.Cwd != "/tmp" {
		t.Errorf("system.run.prepare: %+v %v", res, err)
	}

	res, err = gw.Invoke(ctx, id, "system.run", map[string]any{"command": []string{"echo", "hello"}, "runId": "run-7", "sessionKey": "agent:main:main"}, 5*time.Second, "run-7")
	var out openclaw.SystemRunResult
	if err != nil || !res.OK || json.Unmarshal(res.Payload, &out) != nil || out.Stdout != "hello\n" || !out.Success || *out.ExitCode != 0 {
		t.Errorf("system.run: %+v %v", res, err)
	}
	events, _ := gw.WaitReceived(ctx, "node.event", 1)
	if len(events) != 1 || !strings.Contains(string(events[0].Params), `"event":"exec.finished"`) || !strings.Contains(string(events[0].Params), `\"runId\":\"run-7\"`) {
		t.Errorf("exec.finished: %+v", events)
	}

	res, err = gw.Invoke(ctx, id, "system.run", map[string]any{"command": []string{"rm", "-rf", "/"}}, 5*time.Second, "")
	if err != nil || res.OK || res.Error.Code != "UNAVAILABLE" || res.Error.Message != "SYSTEM_RUN_DENIED: allowlist miss" {
		t.Errorf("denied system.run: %+v %v", res, err)
	}
	events, _ = gw.WaitReceived(ctx, "node.event", 2)
	if len(events) != 2 || !strings.Contains(string(events[1].Params), `"event":"exec.denied"`) || !strings.Contains(string(events[1].Params), `allowlist-miss`) {
		t.Errorf("exec.denied: %+v", events)
	}

	res, err = gw.Invoke(ctx, id, "system.run", map[string]any{"command": "ls"}, 5*time.Second, "")
	if err != nil || res.OK || res.Error.Code != "INVALID_REQUEST" || !strings.Contains(res.Error.Message, "system.run: params") {
		t.Errorf("bad params: %+v %v", res, err)
	}

	// The double's command policy refuses what the node did not declare...
	res, _ = gw.Invoke(ctx, id, "system.execApprovals.set", map[string]any{}, 5*time.Second, "")
	if res.OK || res.Error.Message != "node command not allowed" {
		t.Errorf("undeclared command through the gateway: %+v", res)
	}
	// ...and a gateway that sends it anyway gets the node's own refusal.
	calls := h.calls.Load()
	before := len(gw.Received("node.invoke.result"))
	raw := `{"type":"event","event":"node.invoke.request","payload":{"id":"rogue-1","nodeId":"` + id + `","command":"system.execApprovals.set","paramsJSON":"{}"}}`
	if err := gw.SendRaw(id, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	got, _ := gw.WaitReceived(ctx, "node.invoke.result", before+1)
	if last := string(got[len(got)-1].Params); !strings.Contains(last, `"id":"rogue-1"`) || !strings.Contains(last, `"command not supported"`) {
		t.Errorf("rogue command answer: %s", last)
	}
	if h.calls.Load() != calls {
		t.Error("the Handler saw a command the node does not serve")
	}
	_ = r
}

// TestInvokeTimeout: the Handler's ctx ends at the invoke's timeoutMs with
// cause ErrInvokeTimeout, and the result it returns then says timedOut.
func TestInvokeTimeout(t *testing.T) {
	gw := openclawtest.Start(t, openclawtest.Options{})
	causes := make(chan error, 1)
	h := &handler{run: func(ctx context.Context, p openclaw.SystemRunParams) openclaw.Result {
		start := time.Now()
		<-ctx.Done()
		causes <- context.Cause(ctx)
		if d := time.Since(start); d > 2*time.Second {
			causes <- errors.New("ctx ended late: " + d.String())
		}
		return openclaw.Finished(p, openclaw.SystemRunResult{TimedOut: true, Error: "timed out"})
	}}
	_, info := pairedNode(t, gw, &openclaw.Node{Gateway: gw.URL(), Identity: newKey(t), Handler: h})
	ctx := ctxT(t)
	gw.Invoke(ctx, info.NodeID, "system.run", map[string]any{"command": []string{"sleep", "60"}}, 300*time.Millisecond, "")
	select {
	case err := <-causes:
		if !errors.Is(err, openclaw.ErrInvokeTimeout) {
			t.Fatalf("ctx cause %v, want ErrInvokeTimeout", err)
		}
	case <-ctx.Done():
		t.Fatal("the Handler's ctx did not end")
	}
	got, err := gw.WaitReceived(ctx, "node.invoke.result", 1)
	if err != nil || !strings.Contains(string(got[0].Params), `\"timedOut\":true`) {
		t.Errorf("result: %+v %v", got, err)
	}
}

// TestInvokeCancel: node.invoke.cancel ends the Handler's ctx with cause
// ErrInvokeCanceled.
func TestInvokeCancel(t *testing.T) {
	gw := openclawtest.Start(t, openclawtest.Options{})
	started, causes := make(chan struct{}), make(chan error, 1)
	h := &handler{run: func(ctx context.Context, p openclaw.SystemRunParams) openclaw.Result {
		close(started)
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return openclaw.Finished(p, openclaw.SystemRunResult{Error: "canceled"})
	}}
	_, info := pairedNode(t, gw, &openclaw.Node{Gateway: gw.URL(), Identity: newKey(t), Handler: h})
	ctx, cancel := context.WithCancel(ctxT(t))
	go func() {
		<-started
		cancel()
	}()
	if _, err := gw.Invoke(ctx, info.NodeID, "system.run", map[string]any{"command": []string{"sleep", "60"}}, 10*time.Second, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Invoke: %v", err)
	}
	select {
	case err := <-causes:
		if !errors.Is(err, openclaw.ErrInvokeCanceled) {
			t.Fatalf("ctx cause %v, want ErrInvokeCanceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Handler's ctx did not end on cancel")
	}
	got, _ := gw.WaitReceived(ctxT(t), "node.invoke.result", 1)
	if len(got) != 1 || !got[0].Late {
		t.Errorf("the result after cancel: %+v", got)
	}
}

// TestConfigErrors: configurations that cannot work stop Run at once with
// a *ConfigError naming the field.
func TestConfigErrors(t *testing.T) {
	key := newKey(t)
	for name, tc := range map[string]struct {
		n     *openclaw.Node
		field string
	}{
		"no gateway":      {&openclaw.Node{Identity: key, Handler: echo}, "Gateway"},
		"public ws":       {&openclaw.Node{Gateway: "ws://gateway.example.com", Identity: key, Handler: echo}, "Gateway"},
		"token in URL":    {&openclaw.Node{Gateway: "wss://gw.example/?token=x", Identity: key, Handler: echo}, "Gateway"},
		"pin without tls": {&openclaw.Node{Gateway: "ws://127.0.0.1:1", TLSFingerprint: strings.Repeat("ab", 32), Identity: key, Handler: echo}, "TLSFingerprint"},
		"bad pin":         {&openclaw.Node{Gateway: "wss://127.0.0.1:1", TLSFingerprint: "abc", Identity: key, Handler: echo}, "TLSFingerprint"},
		"no identity":     {&openclaw.Node{Gateway: "ws://127.0.0.1:1", Handler: echo}, "Identity"},
		"no handler":      {&openclaw.Node{Gateway: "ws://127.0.0.1:1", Identity: key}, "Handler"},
		"backoff":         {&openclaw.Node{Gateway: "ws://127.0.0.1:1", Identity: key, Handler: echo, MinBackoff: time.Minute, MaxBackoff: time.Second}, "MinBackoff"},
		"empty command":   {&openclaw.Node{Gateway: "ws://127.0.0.1:1", Identity: key, Handler: echo, Commands: []string{""}}, "Commands"},
	} {
		err := tc.n.Run(context.Background())
		var ce *openclaw.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: Run = %v, want a ConfigError for %s", name, err, tc.field)
		}
	}
}
