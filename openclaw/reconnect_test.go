package openclaw_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/clawguard/clawguard/openclaw/openclawtest"
)

func connects(n int) func(openclawtest.NodeInfo) bool {
	return func(i openclawtest.NodeInfo) bool { return i.Connects >= n }
}

// TestReconnectAfterRestart: the gateway goes away (shutdown event, 1012)
// and comes back on the same address; the node reconnects by itself within
// its backoff, without pairing again, and serves invokes.
func TestReconnectAfterRestart(t *testing.T) {
	gw := openclawtest.Start(t, openclawtest.Options{Token: "shared"})
	r, info := pairedNode(t, gw, &openclaw.Node{Gateway: gw.URL(), Token: "shared", Identity: newKey(t), Handler: echo,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	gw.Stop()
	r.states.wait(t, "disconnected", func(s openclaw.State) bool { return s.Phase == openclaw.PhaseDisconnected && s.Err != nil })
	time.Sleep(300 * time.Millisecond) // a few refused dials while it is down
	if err := gw.Restart(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := gw.WaitNode(ctxT(t), info.NodeID, connects(2)); err != nil {
		t.Fatalf("no reconnect: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("reconnected %v after the restart, backoff is at most 100ms", d)
	}
	if len(gw.Pending()) != 0 {
		t.Errorf("pairing asked again: %+v", gw.Pending())
	}
	res, err := gw.Invoke(ctxT(t), info.NodeID, "system.which", map[string]any{"bins": []string{}}, 5*time.Second, "")
	if err != nil || !res.OK {
		t.Errorf("invoke after reconnect: %+v %v", res, err)
	}
}

// TestNoInvokeRunsTwice: an invoke is executed once per idempotency key —
// a duplicate sent while it runs waits for it, one sent later (even after
// the gateway restarted in between) is answered from the stored result;
// the result that finished while the gateway was away is sent after the
// reconnect (the restarted gateway answers it "ignored", as OpenClaw
// does for a result nobody waits for); a key reused for other params is
// refused.
func TestNoInvokeRunsTwice(t *testing.T) {
	gw := openclawtest.Start(t, openclawtest.Options{})
	var calls atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	h := openclaw.HandlerFunc(func(ctx context.Context, inv openclaw.Invoke) openclaw.Result {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
		return openclaw.Succeed(map[string]any{"call": calls.Load(), "params": inv.Params})
	})
	r, info := pairedNode(t, gw, &openclaw.Node{Gateway: gw.URL(), Identity: newKey(t), Handler: h})
	ctx := ctxT(t)
	params := map[string]any{"command": []string{"make", "release"}}

	first, second := make(chan openclawtest.InvokeResult, 1), make(chan openclawtest.InvokeResult, 1)
	go func() {
		res, _ := gw.Invoke(ctx, info.NodeID, "system.run", params, 10*time.Second, "key-1")
		first <- res
	}()
	<-started
	go func() {
		res, _ := gw.Invoke(ctx, info.NodeID, "system.run", params, 10*time.Second, "key-1")
		second <- res
	}()
	// The duplicate reaches the node while the first still runs.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.log.String(), "duplicate invoke waits for the running one") {
		if time.Now().After(deadline) {
			t.Fatal("duplicate never reached the node")
		}
		time.Sleep(10 * time.Millisecond)
	}

	gw.Stop() // both waiting invokes end with the disconnection
	for _, ch := range []chan openclawtest.InvokeResult{first, second} {
		if res := <-ch; res.OK || !strings.Contains(res.Error.Message, "node disconnected") {
			t.Errorf("invoke across the stop: %+v", res)
		}
	}
	close(release) // the run finishes while the gateway is away
	time.Sleep(100 * time.Millisecond)
	if err := gw.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.WaitNode(ctx, info.NodeID, connects(2)); err != nil {
		t.Fatal(err)
	}
	late, err := gw.WaitReceived(ctx, "node.invoke.result", 2)
	if err != nil || len(late) != 2 || !late[0].Late || !late[1].Late {
		t.Errorf("results of the run that finished while disconnected: %+v %v", late, err)
	}

	res, err := gw.Invoke(ctx, info.NodeID, "system.run", params, 5*time.Second, "key-1")
	if err != nil || !res.OK || !strings.Contains(string(res.Payload), `"call":1`) {
		t.Errorf("replay after reconnect: %+v %v", res, err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the Handler ran %d times for one idempotency key", n)
	}
	res, _ = gw.Invoke(ctx, info.NodeID, "system.run", map[string]any{"command": []string{"rm", "-rf", "/"}}, 5*time.Second, "key-1")
	if res.OK || res.Error.Code != "INVALID_REQUEST" || !strings.Contains(res.Error.Message, "idempotency key reused") {
		t.Errorf("key reused for other params: %+v", res)
	}
	res, _ = gw.Invoke(ctx, info.NodeID, "system.run", params, 5*time.Second, "key-2")
	if !res.OK || calls.Load() != 2 {
		t.Errorf("a new key did not run: %+v, %d calls", res, calls.Load())
	}
}

// TestBadFramesFromTheGateway: a frame that is not JSON, a frame with a
// field of the wrong type and a frame over the announced maxPayload each
// drop the connection (no panic) and the node reconnects; a frame of an
// unknown type, an unknown event and a malformed invoke are skipped on the
// same connection, the malformed invoke answered INVALID_REQUEST when it
// can be.
func TestBadFramesFromTheGateway(t *testing.T) {
	gw := openclawtest.Start(t, openclawtest.Options{MaxPayload: 64 << 10})
	r, info := pairedNode(t, gw, &openclaw.Node{Gateway: gw.URL(), Identity: newKey(t), Handler: echo})
	ctx := ctxT(t)
	id := info.NodeID

	for i, bad := range []string{
		`this is not json`,
		`{"type":"event","event":7}`,
		`{"type":"res","id":"x","ok":"yes"}`,
		`{"type":"event","event":"tick","payload":"` + strings.Repeat("x", 100<<10) + `"}`,
	} {
		before, _ := gw.WaitNode(ctx, id, nil)
		if err := gw.SendRaw(id, []byte(bad)); err != nil {
			t.Fatal(err)
		}
		if _, err := gw.WaitNode(ctx, id, connects(before.Connects+1)); err != nil {
			t.Fatalf("frame %d: no reconnect: %v", i, err)
		}
	}
	log := r.log.String()
	for _, want := range []string{"malformed frame", `\"event\" is not a string`, "over the 65536-byte limit"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	before, _ := gw.WaitNode(ctx, id, nil)
	for _, skipped := range []string{
		`{"type":"from-the-future","id":1}`,
		`{"type":"event","event":"future.event","payload":{"x":1}}`,
		`{"type":"event","event":"node.invoke.request","payload":{"id":"only-an-id"}}`,
		`{"type":"event","event":"node.invoke.request","payload":{"id":"bad-json","nodeId":"` + id + `","command":"system.which","paramsJSON":"{nope"}}`,
		`{"type":"event","event":"node.invoke.cancel","payload":7}`,
	} {
		if err := gw.SendRaw(id, []byte(skipped)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := gw.WaitReceived(ctx, "node.invoke.result", 1)
	if err != nil || !strings.Contains(string(got[0].Params), `"id":"bad-json"`) || !strings.Contains(string(got[0].Params), "paramsJSON is not JSON") {
		t.Errorf("answer to the malformed invoke: %+v %v", got, err)
	}
	res, err := gw.Invoke(ctx, id, "system.which", map[string]any{"bins": []string{}}, 5*time.Second, "")
	if err != nil || !res.OK {
		t.Fatalf("invoke after skipped frames: %+v %v", res, err)
	}
	if now, _ := gw.WaitNode(ctx, id, nil); now.Connects != before.Connects {
		t.Errorf("a skipped frame dropped the connection (%d → %d connects)", before.Connects, now.Connects)
	}
}

// TestTickTimeout: a connection on which the gateway sends nothing for two
// tick intervals is closed by the node, which reconnects.
func TestTickTimeout(t *testing.T) {
	gw := openclawtest.Start(t, openclawtest.Options{TickInterval: 100 * time.Millisecond})
	r, info := pairedNode(t, gw, &openclaw.Node{Gateway: gw.URL(), Identity: newKey(t), Handler: echo})
	time.Sleep(500 * time.Millisecond) // ticks keep it up
	if now, _ := gw.WaitNode(ctxT(t), info.NodeID, nil); now.Connects != 1 {
		t.Fatalf("reconnected while ticks flowed: %d connects", now.Connects)
	}
	gw.SetTicks(false)
	if _, err := gw.WaitNode(ctxT(t), info.NodeID, connects(2)); err != nil {
		t.Fatalf("silent gateway not noticed: %v", err)
	}
	gw.SetTicks(true)
	if !strings.Contains(r.log.String(), "no frame from the gateway in two tick intervals") {
		t.Errorf("log:\n%s", r.log)
	}
}

// TestTLSPinning: against a wss gateway with a self-signed certificate,
// the right pin connects (in any of its accepted spellings), a wrong pin
// is refused at the TLS handshake — before any request, so the gateway
// never sees a connect — with a clear error, and without a pin the
// certificate chain is checked.
func TestTLSPinning(t *testing.T) {
	gw := openclawtest.Start(t, openclawtest.Options{TLS: true})
	fp := gw.Fingerprint()
	colons := make([]string, 0, 32)
	for i := 0; i < len(fp); i += 2 {
		colons = append(colons, strings.ToUpper(fp[i:i+2]))
	}
	for _, pin := range []string{fp, "sha256:" + strings.Join(colons, ":")} {
		_, info := pairedNode(t, gw, &openclaw.Node{Gateway: gw.URL(), TLSFingerprint: pin, Identity: newKey(t), Handler: echo})
		if info.AuthMethod != "none" {
			t.Errorf("pin %s: %+v", pin, info)
		}
	}
	pending := len(gw.Pending())

	wrong := strings.Repeat("00", 32)
	r := run(t, &openclaw.Node{Gateway: gw.URL(), TLSFingerprint: wrong, Identity: newKey(t), Handler: echo})
	st := r.states.wait(t, "pin refused", func(s openclaw.State) bool { return s.Err != nil })
	var pe *openclaw.PinError
	if !errors.As(st.Err, &pe) || pe.Want != wrong || pe.Got != fp {
		t.Fatalf("wrong pin: %v", st.Err)
	}
	if !strings.Contains(st.Err.Error(), "fingerprint mismatch: pinned sha256:"+wrong+", got sha256:"+fp) {
		t.Errorf("message: %v", st.Err)
	}

	r2 := run(t, &openclaw.Node{Gateway: gw.URL(), Identity: newKey(t), Handler: echo})
	st = r2.states.wait(t, "chain refused", func(s openclaw.State) bool { return s.Err != nil })
	var ua x509.UnknownAuthorityError
	if !errors.As(st.Err, &ua) {
		t.Errorf("no pin, self-signed: %v", st.Err)
	}
	time.Sleep(200 * time.Millisecond)
	if len(gw.Pending()) != pending || len(gw.Nodes()) != 2 {
		t.Errorf("a refused TLS peer reached the gateway: pending %d, nodes %d", len(gw.Pending()), len(gw.Nodes()))
	}
}

// TestTrustedProxyAuth: behind a trusted proxy (OpenClaw's trusted-proxy
// mode: the peer among gateway.trustedProxies, the user in the configured
// header, the client in X-Forwarded-For) a node pairs and connects with no
// shared secret; without the user header it is refused with OpenClaw's
// reason and keeps retrying.
func TestTrustedProxyAuth(t *testing.T) {
	gw := openclawtest.Start(t, openclawtest.Options{TrustedProxy: &openclawtest.TrustedProxy{
		Proxies: []string{"127.0.0.1/32"}, UserHeader: "X-Forwarded-User",
		RequiredHeaders: []string{"X-Forwarded-Proto"}, AllowLoopback: true,
	}})
	hdr := map[string][]string{"X-Forwarded-User": {"alice@example.com"}, "X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}}
	_, info := pairedNode(t, gw, &openclaw.Node{Gateway: gw.URL(), Header: hdr, Identity: newKey(t), Handler: echo})
	if info.AuthMethod != "trusted-proxy" || info.User != "alice@example.com" {
		t.Errorf("node behind the proxy: %+v", info)
	}

	delete(hdr, "X-Forwarded-User")
	r := run(t, &openclaw.Node{Gateway: gw.URL(), Header: hdr, Identity: newKey(t), Handler: echo})
	refused := func(s openclaw.State) bool {
		var ce *openclaw.ConnectError
		return errors.As(s.Err, &ce) && ce.Reason == "trusted_proxy_user_missing" && ce.Detail == openclaw.DetailAuthUnauthorized
	}
	r.states.wait(t, "refused", refused)
	time.Sleep(400 * time.Millisecond)
	n := 0
	for _, s := range r.states.list() {
		if refused(s) {
			n++
		}
	}
	if n < 2 {
		t.Errorf("refused %d times in 400ms, want retries", n)
	}
	select {
	case err := <-r.done:
		t.Fatalf("Run gave up: %v", err)
	default:
	}
}

func ExampleNode() {
	node := &openclaw.Node{
		Gateway:  "wss://gateway.example.ts.net",
		Identity: nil, // the device key, from the vault
		Handler: openclaw.HandlerFunc(func(ctx context.Context, inv openclaw.Invoke) openclaw.Result {
			return openclaw.Fail(openclaw.CodeUnavailable, "command not supported")
		}),
	}
	err := node.Run(context.Background())
	fmt.Println(err)
	// Output: openclaw: Node.Identity: required: an ed25519.PrivateKey of 64 bytes
}
