package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/openclaw"
	"github.com/clawguard/clawguard/openclaw/openclawtest"
	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
	"github.com/coder/websocket"
)

// TestNodeBehindGateTrustedProxy is docs/openclaw.md's setup: OpenClaw in
// trusted-proxy mode with the gate's X-Clawguard-Identity as its user
// header, behind the real gate in real Caddy. `clawguard node` gets in
// with a gate token as token:node_gate and pairs; a forged identity header
// gets nowhere: not through the gate (which strips it and wants a
// credential), not past it to the gateway directly, and another of the
// gate's identities is not a user the gateway allows.
func TestNodeBehindGateTrustedProxy(t *testing.T) {
	t.Setenv(vault.PassphraseEnv, "node gate test")
	dir := t.TempDir()
	v, err := vault.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const nodeToken, otherToken = "node-gate-token-0123456789abcdef", "other-client-token-0123456789abc"
	for name, val := range map[string]string{"node_gate": nodeToken, "other_client": otherToken} {
		if err := v.Set(name, []byte(val)); err != nil {
			t.Fatal(err)
		}
	}
	gw := openclawtest.Start(t, openclawtest.Options{TrustedProxy: &openclawtest.TrustedProxy{
		Proxies: []string{"127.0.0.1"}, UserHeader: wire.HeaderIdentity, RequiredHeaders: []string{wire.HeaderMethod},
		AllowUsers: []string{"token:node_gate"}, AllowLoopback: true,
	}})
	// OpenClaw attributes a connection to the rightmost X-Forwarded-For hop
	// that is neither loopback nor a trusted proxy, so a client on loopback
	// cannot come through a proxy; the clients here use an address of this
	// host's own network, as a LAN or tailnet client would its own.
	lan := lanAddr(t)
	port := testcaddy.FreePort(t)
	testcaddy.Load(t, testcaddy.Global(testcaddy.FreePort(t))+fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1 `+lan+`
	clawguard {
		token {vault.node_gate} {vault.other_client}
		local_trust off
		state_dir %s
	}
	reverse_proxy %s
}
`, port, dir, gw.Addr()))
	gate := fmt.Sprintf("ws://%s:%d", lan, port)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// An identity header without a credential: the gate refuses it.
	_, resp, err := websocket.Dial(ctx, gate, &websocket.DialOptions{HTTPHeader: http.Header{
		wire.HeaderIdentity: {"token:node_gate"}, wire.HeaderMethod: {"token"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged identity through the gate: %v, %+v", err, resp)
	}

	// The same forgery straight to the gateway, from another loopback
	// address than the gate's: not a trusted proxy.
	if err := refused(ctx, t, gw.URL(), http.Header{wire.HeaderIdentity: {"token:node_gate"}, wire.HeaderMethod: {"token"}, "X-Forwarded-For": {"192.0.2.1"}},
		func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
			return d.DialContext(ctx, network, addr)
		}); err != "proxy_attribution_required" && err != "trusted_proxy_untrusted_source" {
		t.Fatalf("forged identity straight to the gateway: refused with %q", err)
	}

	// Another client of the gate is someone the gateway does not allow.
	if err := refused(ctx, t, gate, http.Header{"Authorization": {"Bearer " + otherToken}}, nil); err != "trusted_proxy_user_not_allowed" {
		t.Fatalf("token:other_client: refused with %q", err)
	}

	// clawguard node through the gate: pairs and serves as token:node_gate.
	h := startNode(t, dir, "--gateway", gate, "--gate-token", "{vault.node_gate}")
	req, err := gw.WaitPairing(ctx)
	if err != nil {
		t.Fatalf("no pairing request: %v\n%s", err, h.stderr)
	}
	if err := gw.Approve(req.RequestID); err != nil {
		t.Fatal(err)
	}
	node, err := gw.WaitNode(ctx, req.DeviceID, nil)
	if err != nil {
		t.Fatalf("node did not connect: %v\n%s", err, h.stderr)
	}
	if node.User != "token:node_gate" || node.AuthMethod != "trusted-proxy" {
		t.Fatalf("the gateway sees %+v", node)
	}
	r, err := gw.Invoke(ctx, node.NodeID, openclaw.CommandSystemWhich, openclaw.SystemWhichParams{Bins: []string{"id"}}, 10*time.Second, "")
	if err != nil || !r.OK {
		t.Fatalf("system.which through the gate: %+v, %v", r, err)
	}
	if strings.Contains(h.stderr.String(), nodeToken) {
		t.Fatal("the gate token is in the node's log")
	}
}

// refused connects a fresh device to gateway with header (and dial) and
// returns the reason the gateway gave for refusing it.
func refused(ctx context.Context, t *testing.T, gateway string, header http.Header, dial func(context.Context, string, string) (net.Conn, error)) string {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	why := make(chan error, 1)
	n := &openclaw.Node{Gateway: gateway, Identity: key, Header: header, Dial: dial,
		Handler: openclaw.HandlerFunc(func(context.Context, openclaw.Invoke) openclaw.Result { return openclaw.Fail("X", "unused") }),
		OnState: func(s openclaw.State) {
			if s.Phase == openclaw.PhaseConnected {
				why <- errors.New("connected")
			} else if s.Err != nil {
				select {
				case why <- s.Err:
				default:
				}
			}
		}}
	go n.Run(ctx)
	select {
	case err := <-why:
		cancel()
		var ce *openclaw.ConnectError
		if errors.As(err, &ce) {
			return ce.Reason
		}
		return err.Error()
	case <-ctx.Done():
		return "no answer"
	}
}

// lanAddr is a private IPv4 address of this host (plain ws:// is refused
// to public ones).
func lanAddr(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsPrivate() {
			return n.IP.String()
		}
	}
	t.Fatal("this host has no private IPv4 address (Docker's bridge has one)")
	return ""
}
