package multihost

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/openclaw/openclawtest"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
)

// Bounds the test asserts. A request for a node host that is gone must be
// answered by the gate within its upstream timeouts plus slack for a
// loaded 2-core machine; one for a live node host within serveBound.
const (
	failBound  = headerTimeout + 2*time.Second
	serveBound = 5 * time.Second
	// peerBound is how soon the gate's watch reports a node host that is
	// gone: a probe interval, a probe's timeout, slack.
	peerBound = peerInterval + peerTimeout + 2*time.Second
	// invokeTimeout bounds a system.run through the OpenClaw gateway; one
	// for a node host that is gone must end within invokeBound.
	invokeTimeout = 3 * time.Second
	invokeBound   = invokeTimeout + 2*time.Second
	// upBound is how long the hosts may take to come up, and a cut-off host
	// to serve again once reconnected.
	upBound = 90 * time.Second
)

// TestMultiHost runs the gateway host and two node hosts as containers on a
// private network joined by a tailnet, then takes the node hosts away one
// by one: stopped, then cut off the network, then reconnected.
func TestMultiHost(t *testing.T) {
	image := needImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p := newPhases(t)
	w := newWorld(t, ctx, image)
	var (
		l            lab
		node1, node2 = w.newNode("node1"), w.newNode("node2")
		c            *tsnettest.Client
		oc           map[string]openclawtest.NodeInfo // the OpenClaw gateway's nodes by name
	)

	p.run("start the lab (control, DERP, STUN), the gateway host and two node hosts", func() {
		l = w.startLab(ctx)
		g := w.startGateway(ctx, l, node1, node2)
		w.startNode(ctx, l, g, node1)
		w.startNode(ctx, l, g, node2)
	})

	p.run("the test joins the tailnet; the OpenClaw gateway and each node host answer through the gate, which sees them up", func() {
		var err error
		if c, err = join(t, ctx, l, l.authKey, "tester", tagTester); err != nil {
			t.Fatalf("joining the lab's tailnet: %v", err)
		}
		for _, n := range []nodeHost{node1, node2} {
			took := waitServes(t, c, gateURL(n, "/healthz"), upBound)
			t.Logf("%s serves through the gate after %s", n.name, took.Round(time.Millisecond))
			if r := serves(t, c, gateURL(n, "/v1/sandboxes")); !strings.Contains(r.body, `"sandboxes"`) {
				t.Errorf("%s /v1/sandboxes through the gate: %q, want the sidecar's list (the signed identity accepted)", n.name, r.body)
			}
			out, r := execOn(c, n, "hostname")
			t.Logf("%s: hostname on the node host: %d %q in %s", n.name, r.status, out.Stdout, r.took.Round(time.Millisecond))
			if r.status != http.StatusOK || strings.TrimSpace(out.Stdout) != n.name {
				t.Errorf("%s: hostname through the gate: %d %s %v, want 200 and %q (run on that host)", n.name, r.status, r.body, r.err, n.name)
			}
			_, took = w.waitPeer(t, ctx, n.name, tsnet.PeerUp, upBound)
			t.Logf("the gate's watch: %s up (waited %s)", n.name, took.Round(time.Millisecond))
		}
		w.wantAuditDown(t, ctx)
		nonce, err := challenge(ctx, c, openclawURL)
		if err != nil {
			t.Errorf("WebSocket to the OpenClaw gateway through the gate: %v", err)
		}
		t.Logf("%s: the OpenClaw gateway's connect.challenge (nonce %d bytes)", openclawURL, len(nonce))
	})

	p.run("both node hosts pair with the OpenClaw gateway through the gate and run its system.run", func() {
		w.approvePairing(t, ctx, upBound, node1.name, node2.name)
		oc, _ = w.waitNodes(t, ctx, upBound, "both connected", func(m map[string]openclawtest.NodeInfo) bool {
			return m[node1.name].NodeID != "" && m[node2.name].NodeID != ""
		})
		for _, n := range []nodeHost{node1, node2} {
			info := oc[n.name]
			t.Logf("%s in the OpenClaw gateway: node %.12s, %s, auth %s, commands %v, from %s", n.name, info.NodeID, info.Mode, info.AuthMethod, info.Commands, info.RemoteAddr)
			// The gateway sees the gate's connection: the node came
			// through it, over the tailnet.
			if !strings.HasPrefix(info.RemoteAddr, "127.0.0.1:") {
				t.Errorf("%s reached the OpenClaw gateway from %s, want the gate on 127.0.0.1", n.name, info.RemoteAddr)
			}
			r, res, took := w.systemRun(t, ctx, info, 20*time.Second, "hostname")
			t.Logf("%s: system.run hostname: ok %t %q in %s", n.name, r.OK, res.Stdout, took.Round(time.Millisecond))
			if !r.OK || !res.Success || strings.TrimSpace(res.Stdout) != n.name {
				t.Errorf("%s: system.run hostname: %+v %+v, want %q (run on that host)", n.name, r, res, n.name)
			}
		}
	})

	p.run("locks: a wrong auth key, the test straight to a sidecar, a tag the gate does not let in, commands the node's approvals do not allow", func() {
		out, r := execOn(c, node2, "cat", "/state/vault.json")
		t.Logf("cat /state/vault.json on node2: %d %s", r.status, strings.TrimSpace(r.body))
		if r.status != http.StatusForbidden || out.Stdout != "" || !strings.Contains(r.body, "no allow entry matches") {
			t.Errorf("cat /state/vault.json on node2 through the gate: %d %s %v, want 403: no allow entry of node2's approvals matches", r.status, r.body, r.err)
		}
		or, res, _ := w.systemRun(t, ctx, oc[node2.name], 20*time.Second, "cat", "/state/vault.json")
		t.Logf("system.run cat /state/vault.json on node2: ok %t %+v %+v", or.OK, or.Error, res)
		if (or.OK && res.Success) || res.Stdout != "" {
			t.Errorf("system.run cat /state/vault.json on node2: %+v %+v, want it refused by node2's approvals", or, res)
		}
		_, err := join(t, ctx, l, "not-"+l.authKey, "stranger")
		t.Logf("joining with a wrong auth key: %v", err)
		if err == nil || !strings.Contains(err.Error(), "invalid authkey") {
			t.Errorf("joining with a wrong auth key: %v, want the lab's \"invalid authkey\"", err)
		}
		// Only the gate's tag may use a sidecar (its peer policy), even
		// from a node the tailnet lets through.
		direct := fmt.Sprintf("http://%s:%d/healthz", node1.name, sidecar.DefaultTailnetPort)
		r = fetchConnected(t, c, direct)
		t.Logf("GET %s from %s: %d %s", direct, tagTester, r.status, strings.TrimSpace(r.body))
		if r.status != http.StatusForbidden {
			t.Errorf("GET %s from %s: %d %q %v, want 403 from the sidecar's peer policy", direct, tagTester, r.status, r.body, r.err)
		}
		intruder, err := join(t, ctx, l, l.authKey, "intruder", tagIntruder)
		if err != nil {
			t.Fatalf("joining as %s: %v", tagIntruder, err)
		}
		r = fetchConnected(t, intruder, gateURL(node1, "/healthz"))
		t.Logf("GET through the gate from %s: %d %s", tagIntruder, r.status, strings.TrimSpace(r.body))
		if r.status != http.StatusForbidden {
			t.Errorf("GET through the gate from %s: %d %q %v, want 403 (tailnet_identity)", tagIntruder, r.status, r.body, r.err)
		}
	})

	p.run("no secret in any container's argv, log or state files", func() {
		w.checkSecrets(ctx)
	})

	p.run("docker stop node1: the gate reports it, its requests fail fast, node2 keeps serving", func() {
		start := time.Now()
		w.must(ctx, "stop", "-t", "10", w.container(node1.name))
		t.Logf("docker stop %s: %s", node1.name, time.Since(start).Round(time.Millisecond))
		for range 2 { // the first may ride a kept-alive connection, the second dials
			failsFast(t, c, gateURL(node1, "/healthz"))
		}
		serves(t, c, gateURL(node2, "/v1/sandboxes"))
		peerDown(t, ctx, w, node1, start)
		if p := w.peers(t, ctx)[node2.name]; p.State != tsnet.PeerUp {
			t.Errorf("the gate's peer %s: %+v, want up", node2.name, p)
		}
		w.waitNodes(t, ctx, peerBound, node1.name+" gone", func(m map[string]openclawtest.NodeInfo) bool {
			_, ok := m[node1.name]
			return !ok
		})
		t.Logf("%s gone from the OpenClaw gateway's nodes by %s after the stop began", node1.name, time.Since(start).Round(time.Millisecond))
		invokeFails(t, ctx, w, oc[node1.name], node1)
		r, res, took := w.systemRun(t, ctx, oc[node2.name], 20*time.Second, "hostname")
		t.Logf("%s: system.run hostname: ok %t %q in %s", node2.name, r.OK, res.Stdout, took.Round(time.Millisecond))
		if !r.OK || strings.TrimSpace(res.Stdout) != node2.name {
			t.Errorf("%s: system.run hostname with node1 gone: %+v %+v", node2.name, r, res)
		}
	})

	p.run("docker network disconnect node2: the gate reports it, its requests fail within their timeouts", func() {
		start := time.Now()
		w.must(ctx, "network", "disconnect", w.network, w.container(node2.name))
		for range 2 {
			failsFast(t, c, gateURL(node2, "/healthz"))
		}
		failsFast(t, c, gateURL(node1, "/healthz"))
		peerDown(t, ctx, w, node2, start)
		invokeFails(t, ctx, w, oc[node2.name], node2)
	})

	p.run("the gate's reports with both node hosts gone", func() {
		gateReports(t, ctx, w, c, node1, node2)
	})

	p.run("docker network connect node2: it serves again, through the gate and in the OpenClaw gateway", func() {
		start := time.Now()
		w.must(ctx, "network", "connect", "--alias", node2.name, w.network, w.container(node2.name))
		took := waitServes(t, c, gateURL(node2, "/healthz"), upBound)
		t.Logf("%s serves through the gate %s after reconnecting", node2.name, took.Round(time.Millisecond))
		serves(t, c, gateURL(node2, "/v1/sandboxes"))
		w.waitPeer(t, ctx, node2.name, tsnet.PeerUp, upBound)
		t.Logf("the gate's watch: %s up %s after reconnecting", node2.name, time.Since(start).Round(time.Millisecond))
		before := oc[node2.name].Connects
		oc, _ = w.waitNodes(t, ctx, upBound, node2.name+" connected again", func(m map[string]openclawtest.NodeInfo) bool {
			return m[node2.name].Connects > before
		})
		t.Logf("%s in the OpenClaw gateway again (connection %d) %s after reconnecting", node2.name, oc[node2.name].Connects, time.Since(start).Round(time.Millisecond))
		r, res, _ := w.systemRun(t, ctx, oc[node2.name], 20*time.Second, "hostname")
		if !r.OK || strings.TrimSpace(res.Stdout) != node2.name {
			t.Errorf("%s: system.run hostname after reconnecting: %+v %+v", node2.name, r, res)
		}
		out, code := w.exec(ctx, "gateway", "clawguard", "tailnet", "status")
		t.Logf("clawguard tailnet status (exit %d):\n%s", code, out)
		if code != 1 || !regexp.MustCompile(`(?m)^`+node2.name+`\s+up\s`).MatchString(out) {
			t.Errorf("clawguard tailnet status: exit %d, want 1 (node1 is still down) with %s up", code, node2.name)
		}
		w.wantAuditDown(t, ctx, node1)
	})
}

// openclawURL is the OpenClaw gateway's WebSocket, through the gate.
var openclawURL = fmt.Sprintf("ws://gate:%d/", gatePort)

// gateURL is path on node n's sidecar, through the gate's tailnet site.
func gateURL(n nodeHost, path string) string {
	return fmt.Sprintf("http://gate:%d/%s%s", gatePort, n.name, path)
}

// peerDown wants the gate's watch to report n down within peerBound of
// since, with a reason.
func peerDown(t *testing.T, ctx context.Context, w *world, n nodeHost, since time.Time) {
	t.Helper()
	h, _ := w.waitPeer(t, ctx, n.name, tsnet.PeerDown, peerBound)
	took := h.Since.Sub(since)
	t.Logf("the gate's watch: %s down %s after it went (%s)", n.name, took.Round(time.Millisecond), h.LastError)
	if took > peerBound || h.LastError == "" {
		t.Errorf("the gate's peer %s: down after %s with reason %q, want it within %s with a reason", n.name, took, h.LastError, peerBound)
	}
}

// invokeFails wants a system.run on node host n, which is gone, to fail
// within invokeBound.
func invokeFails(t *testing.T, ctx context.Context, w *world, info openclawtest.NodeInfo, n nodeHost) {
	t.Helper()
	r, _, took := w.systemRun(t, ctx, info, invokeTimeout, "hostname")
	t.Logf("%s: system.run hostname: ok %t %+v in %s", n.name, r.OK, r.Error, took.Round(time.Millisecond))
	if r.OK || took > invokeBound {
		t.Errorf("%s: system.run with the node host gone: %+v after %s, want an error within %s", n.name, r, took, invokeBound)
	}
}

// gateReports checks what the gateway host says while both node hosts are
// gone: its own node stays up, the watched node hosts are down (status,
// metrics, audit), and the OpenClaw gateway behind it still answers.
func gateReports(t *testing.T, ctx context.Context, w *world, c *tsnettest.Client, gone ...nodeHost) {
	t.Helper()
	if _, err := challenge(ctx, c, openclawURL); err != nil {
		t.Errorf("WebSocket to the OpenClaw gateway through the gate, both node hosts gone: %v", err)
	}
	out, code := w.exec(ctx, "gateway", "clawguard", "tailnet", "status")
	t.Logf("clawguard tailnet status (exit %d):\n%s", code, out)
	if !strings.Contains(out, "running") {
		t.Errorf("clawguard tailnet status: %q, want the gate's node running", out)
	}
	if code != 1 {
		t.Errorf("clawguard tailnet status: exit %d with node hosts down, want 1", code)
	}
	for _, n := range gone {
		if !regexp.MustCompile(`(?m)^` + n.name + `\s+down\s`).MatchString(out) {
			t.Errorf("clawguard tailnet status does not show %s down", n.name)
		}
	}
	w.wantAuditDown(t, ctx, gone...)
	metrics := w.metricLines(t, ctx, "clawguard_tailnet_")
	t.Logf("the gateway's tailnet metrics:\n%s", strings.Join(metrics, "\n"))
	want := []string{`clawguard_tailnet_node_up{node="gate"} 1`}
	for _, n := range gone {
		want = append(want, `clawguard_tailnet_peer_up{peer="`+n.name+`"} 0`)
	}
	for _, m := range want {
		if !slices.Contains(metrics, m) {
			t.Errorf("the gateway's /metrics lacks %s", m)
		}
	}
}

// fetchConnected is fetch, tried again (up to three times) when the
// request never reached the server: the offline tailnet now and then loses
// a TCP handshake on a loaded machine (see tsnettest.Client.Get).
func fetchConnected(t *testing.T, c *tsnettest.Client, url string) result {
	t.Helper()
	for try := 1; ; try++ {
		r := fetch(c, url)
		if r.err == nil || r.connected || try == 3 {
			return r
		}
		t.Logf("GET %s: no connection to the gate (%v); trying again", url, r.err)
	}
}

// serves wants url to answer 200 within serveBound.
func serves(t *testing.T, c *tsnettest.Client, url string) result {
	t.Helper()
	r := fetchConnected(t, c, url)
	t.Logf("GET %s: %d in %s", url, r.status, r.took.Round(time.Millisecond))
	if r.status != http.StatusOK || r.took > serveBound {
		t.Errorf("GET %s: %d %q %v after %s, want 200 within %s", url, r.status, r.body, r.err, r.took, serveBound)
	}
	return r
}

// failsFast wants the gate to answer url with 502 or 504 (the node host
// is gone) within failBound: nothing hangs past the transport's timeouts.
func failsFast(t *testing.T, c *tsnettest.Client, url string) {
	t.Helper()
	r := fetchConnected(t, c, url)
	t.Logf("GET %s: %d in %s", url, r.status, r.took.Round(time.Millisecond))
	switch {
	case r.err != nil:
		t.Errorf("GET %s: %v after %s, want the gate's 502/504 within %s", url, r.err, r.took, failBound)
	case r.status != http.StatusBadGateway && r.status != http.StatusGatewayTimeout:
		t.Errorf("GET %s: %d %q, want 502 or 504 (the node host is gone)", url, r.status, r.body)
	case r.took > failBound:
		t.Errorf("GET %s: %d after %s, want it within %s (dial_timeout %s, response_header_timeout %s)",
			url, r.status, r.took, failBound, dialTimeout, headerTimeout)
	}
}

// waitServes polls url until it answers 200 and returns how long that took;
// t fails after timeout.
func waitServes(t *testing.T, c *tsnettest.Client, url string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last result
	for time.Since(start) < timeout {
		if last = fetch(c, url); last.status == http.StatusOK {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: not 200 within %s (last: %d %q %v)", url, timeout, last.status, last.body, last.err)
	return 0
}

// phases times the test's phases and prints them, and the total, at its end.
type phases struct {
	t     *testing.T
	start time.Time
	done  []string
}

func newPhases(t *testing.T) *phases {
	p := &phases{t: t, start: time.Now()}
	t.Cleanup(func() {
		t.Logf("phases:\n%s\ntotal %s", strings.Join(p.done, "\n"), time.Since(p.start).Round(time.Millisecond))
	})
	return p
}

// run runs phase f; a phase that fails t (t.Fatal) ends the test.
func (p *phases) run(name string, f func()) {
	p.t.Helper()
	p.t.Logf("=== %s", name)
	start := time.Now()
	defer func() {
		p.done = append(p.done, fmt.Sprintf("%8s  %s", time.Since(start).Round(time.Millisecond), name))
	}()
	f()
}
