package multihost

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
)

// Bounds the test asserts. A request for a node host that is gone must be
// answered by the gate within its upstream timeouts plus slack for a
// loaded 2-core machine; one for a live node host within serveBound.
const (
	failBound  = headerTimeout + 2*time.Second
	serveBound = 5 * time.Second
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
		node1, node2 nodeHost
		c            *tsnettest.Client
	)

	p.run("start the lab (control, DERP, STUN), two node hosts and the gateway host", func() {
		l = w.startLab(ctx)
		node1, node2 = w.startNode(ctx, l, "node1"), w.startNode(ctx, l, "node2")
		w.startGateway(ctx, l, node1, node2)
	})

	p.run("the test joins the tailnet; the OpenClaw gateway and each node host answer through the gate", func() {
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
		}
		for _, n := range []nodeHost{node1, node2} {
			out, r := execOn(c, n, "hostname")
			t.Logf("%s: hostname on the node host: %d %q in %s", n.name, r.status, out.Stdout, r.took.Round(time.Millisecond))
			if r.status != http.StatusOK || strings.TrimSpace(out.Stdout) != n.name {
				t.Errorf("%s: hostname through the gate: %d %s %v, want 200 and %q (run on that host)", n.name, r.status, r.body, r.err, n.name)
			}
		}
		nonce, err := challenge(ctx, c, openclawURL)
		if err != nil {
			t.Errorf("WebSocket to the OpenClaw gateway through the gate: %v", err)
		}
		t.Logf("%s: the OpenClaw gateway's connect.challenge (nonce %d bytes)", openclawURL, len(nonce))
	})

	p.run("locks: a wrong auth key, the test straight to a sidecar, a tag the gate does not let in, a command the node's approvals do not allow", func() {
		out, r := execOn(c, node2, "cat", "/state/vault.json")
		t.Logf("cat /state/vault.json on node2: %d %s", r.status, strings.TrimSpace(r.body))
		if r.status != http.StatusForbidden || out.Stdout != "" || !strings.Contains(r.body, "no allow entry matches") {
			t.Errorf("cat /state/vault.json on node2 through the gate: %d %s %v, want 403: no allow entry of node2's approvals matches", r.status, r.body, r.err)
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

	p.run("docker stop node1: its requests fail fast, node2 keeps serving", func() {
		start := time.Now()
		w.must(ctx, "stop", "-t", "10", w.container(node1.name))
		t.Logf("docker stop %s: %s", node1.name, time.Since(start).Round(time.Millisecond))
		for range 2 { // the first may ride a kept-alive connection, the second dials
			failsFast(t, c, gateURL(node1, "/healthz"))
		}
		serves(t, c, gateURL(node2, "/v1/sandboxes"))
	})

	p.run("docker network disconnect node2: its requests fail within their timeouts", func() {
		w.must(ctx, "network", "disconnect", w.network, w.container(node2.name))
		for range 2 {
			failsFast(t, c, gateURL(node2, "/healthz"))
		}
		failsFast(t, c, gateURL(node1, "/healthz"))
	})

	p.run("the gate's reports with both node hosts gone", func() {
		gateReports(t, ctx, w, c)
	})

	p.run("docker network connect node2: it serves again", func() {
		w.must(ctx, "network", "connect", "--alias", node2.name, w.network, w.container(node2.name))
		took := waitServes(t, c, gateURL(node2, "/healthz"), upBound)
		t.Logf("%s serves through the gate %s after reconnecting", node2.name, took.Round(time.Millisecond))
		serves(t, c, gateURL(node2, "/v1/sandboxes"))
	})
}

// openclawURL is the OpenClaw gateway's WebSocket, through the gate.
var openclawURL = fmt.Sprintf("ws://gate:%d/", gatePort)

// gateURL is path on node n's sidecar, through the gate's tailnet site.
func gateURL(n nodeHost, path string) string {
	return fmt.Sprintf("http://gate:%d/%s%s", gatePort, n.name, path)
}

// gateReports checks what the gateway host says while both node hosts are
// gone: its own node stays up (status, metric) and the OpenClaw gateway
// behind it still answers.
func gateReports(t *testing.T, ctx context.Context, w *world, c *tsnettest.Client) {
	t.Helper()
	if _, err := challenge(ctx, c, openclawURL); err != nil {
		t.Errorf("WebSocket to the OpenClaw gateway through the gate, both node hosts gone: %v", err)
	}
	out, code := w.exec(ctx, "gateway", "clawguard", "tailnet", "status")
	t.Logf("clawguard tailnet status (exit %d):\n%s", code, out)
	if code != 0 || !strings.Contains(out, "running") {
		t.Errorf("clawguard tailnet status: exit %d, want 0 with the gate's node running", code)
	}
	metrics, code := w.exec(ctx, "gateway", "wget", "-qO-", "http://127.0.0.1:2019/metrics")
	if code != 0 {
		t.Fatalf("the gateway's /metrics: exit %d", code)
	}
	var tailnet []string
	for line := range strings.Lines(metrics) {
		if strings.HasPrefix(line, "clawguard_tailnet_") {
			tailnet = append(tailnet, strings.TrimSpace(line))
		}
	}
	t.Logf("the gateway's tailnet metrics:\n%s", strings.Join(tailnet, "\n"))
	if want := `clawguard_tailnet_node_up{node="gate"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("the gateway's /metrics lacks %s", want)
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
