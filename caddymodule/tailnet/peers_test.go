package tailnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"tailscale.com/tstest"

	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
	"github.com/clawguard/clawguard/wire"
)

// Probe timing of the peer tests: the shortest interval allowed.
const (
	testInterval = time.Second
	testTimeout  = 800 * time.Millisecond
)

// nodeHost is a node host on the test tailnet: a tsnet node of this
// process with a plain net/http server on port 18791, as
// `clawguard sidecar --tailnet` runs it. Its state stays in dir, so a
// restart comes back with the same key, address and name.
type nodeHost struct {
	name string
	s    tsnet.Settings
	srv  *http.Server
}

func startNodeHost(t *testing.T, tn *tsnettest.Tailnet, name, dir string, h http.Handler) *nodeHost {
	t.Helper()
	s, err := tsnet.NodeConfig{ControlURL: tn.ControlURL}.Resolve(name, dir)
	if err != nil {
		t.Fatal(err)
	}
	nh := &nodeHost{name: name, s: s}
	nh.serve(t, h)
	return nh
}

func (nh *nodeHost) serve(t *testing.T, h http.Handler) {
	t.Helper()
	ln, err := tsnet.Listen(nh.name, nh.s, 18791, nil)
	if err != nil {
		t.Fatal(err)
	}
	nh.srv = &http.Server{Handler: h}
	go nh.srv.Serve(ln)
	t.Cleanup(nh.stop)
}

// stop closes the server and so the node: the host is gone from the tailnet.
func (nh *nodeHost) stop() {
	nh.srv.Close()
	for {
		if _, ok := tsnet.NodeStatus(nh.name); !ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// healthz answers GET /healthz with 200, as the sidecar does.
var healthz = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz" {
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, "ok\n")
})

// hungServer accepts connections and reads them, never answering: a node
// host whose server is stuck. It counts the connections open at once.
type hungServer struct {
	open, most atomic.Int64
	wg         sync.WaitGroup
}

func (h *hungServer) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n := h.open.Add(1)
		for m := h.most.Load(); n > m && !h.most.CompareAndSwap(m, n); m = h.most.Load() {
		}
		h.wg.Go(func() {
			io.Copy(io.Discard, c) // until the prober hangs up
			c.Close()
			h.open.Add(-1)
		})
	}
}

func peerApp(state string, nodes map[string]map[string]any, peers map[string]map[string]any) map[string]any {
	app := nodeApp(state, nodes)
	app["peers"] = peers
	return app
}

func peerConfig(addr string, extra ...string) map[string]any {
	pc := map[string]any{"address": addr, "interval": testInterval.String(), "timeout": testTimeout.String()}
	for i := 0; i+1 < len(extra); i += 2 {
		pc[extra[i]] = extra[i+1]
	}
	return pc
}

// waitPeer waits until peer name's health satisfies ok.
func waitPeer(t *testing.T, ctx context.Context, name string, ok func(tsnet.PeerHealth) bool) tsnet.PeerHealth {
	t.Helper()
	for {
		h, _ := tsnet.PeerStatus(name)
		if ok(h) {
			return h
		}
		select {
		case <-ctx.Done():
			t.Fatalf("peer %s: %+v (%v)", name, h, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func isUp(h tsnet.PeerHealth) bool   { return h.State == tsnet.PeerUp }
func isDown(h tsnet.PeerHealth) bool { return h.State == tsnet.PeerDown }

// scrapePeers reads the clawguard_tailnet_peer_* metrics by family and
// peer from the admin endpoint's /metrics.
func scrapePeers(t *testing.T) map[string]map[string]float64 {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string]map[string]float64{}
	for name, mf := range families {
		if !strings.HasPrefix(name, "clawguard_tailnet_peer_") {
			continue
		}
		out[name] = map[string]float64{}
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[name][m.GetLabel()[0].GetValue()] = v
		}
	}
	promtoolCheck(t, raw, "clawguard_tailnet_")
	return out
}

// TestWatchNodeHosts: the gate watches three node hosts over the tailnet
// and reports each as it is — up, stopped, hung, back — in its admin API
// and metrics, within the probe interval and timeout, and a reload keeps
// the history of an unchanged peer.
func TestWatchNodeHosts(t *testing.T) {
	tstest.ResourceCheck(t)
	tsnettest.CheckNoNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	tn := tsnettest.Start(t, nil)
	state := t.TempDir()
	logTo := t.Name()
	nodes := map[string]map[string]any{"gate": {"control_url": tn.ControlURL, "ephemeral": true}}
	peers := map[string]map[string]any{
		"node1": peerConfig("node1:18791"),
		"node2": peerConfig("node2:18791"),
		"hung":  peerConfig("hung:18791", "via", "gate"),
	}
	cfg := caddyJSON(t, peerApp(state, nodes, peers), logTo)
	// No site binds the gate's node: the watches keep it running.
	loadCaddy(t, cfg)
	for _, name := range []string{"node1", "node2", "hung"} {
		if h, ok := tsnet.PeerStatus(name); !ok || h.Via != "gate" || h.Address != name+":18791" {
			t.Fatalf("peer %s right after the load: %+v, %v", name, h, ok)
		}
	}

	hosts := t.TempDir()
	startNodeHost(t, tn, "node1", hosts, healthz)
	node2 := startNodeHost(t, tn, "node2", hosts, healthz)
	hs, err := tsnet.NodeConfig{ControlURL: tn.ControlURL, Ephemeral: true}.Resolve("hung", hosts)
	if err != nil {
		t.Fatal(err)
	}
	hungLn, err := tsnet.Listen("hung", hs, 18791, nil)
	if err != nil {
		t.Fatal(err)
	}
	hung := new(hungServer)
	go hung.serve(hungLn)
	t.Cleanup(func() {
		hungLn.Close()
		hung.wg.Wait()
	})

	// Both healthy hosts come up; the hung one is down once its probe times out.
	up1 := waitPeer(t, ctx, "node1", isUp)
	waitPeer(t, ctx, "node2", isUp)
	hh := waitPeer(t, ctx, "hung", func(h tsnet.PeerHealth) bool {
		return isDown(h) && strings.Contains(h.LastError, "connected, but no answer within 800ms")
	})
	t.Logf("hung: %s", hh.LastError)
	failures1 := up1.Failures // node1 failed while its host was not up yet; no more from here
	if up1.LatencyMS <= 0 || up1.LastSeen.IsZero() || !up1.Up {
		t.Errorf("node1 up: %+v", up1)
	}
	m := scrapePeers(t)
	if up := m["clawguard_tailnet_peer_up"]; up["node1"] != 1 || up["node2"] != 1 || up["hung"] != 0 {
		t.Errorf("clawguard_tailnet_peer_up = %v", up)
	}
	if seen := m["clawguard_tailnet_peer_last_seen_timestamp_seconds"]; seen["node1"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last_seen = %v", seen)
	}
	fetched, err := tsnet.FetchPeers(ctx, fmt.Sprintf("127.0.0.1:%d", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	if len(fetched) != 3 || fetched[0].Peer != "hung" || fetched[0].Up || !fetched[1].Up || !fetched[2].Up || fetched[0].Problem() == "" || fetched[1].Problem() != "" {
		t.Errorf("GET /tailnet/peers = %+v", fetched)
	}

	// The hung host: each probe gives up after the timeout and hangs up,
	// so neither connections nor goroutines pile up over several intervals.
	g0, p0 := runtime.NumGoroutine(), hh.Probes
	time.Sleep(4 * testInterval)
	hh, _ = tsnet.PeerStatus("hung")
	g1 := runtime.NumGoroutine()
	t.Logf("hung: %d probes in 4 intervals; goroutines %d → %d; at most %d connections open at once", hh.Probes-p0, g0, g1, hung.most.Load())
	if hh.Probes-p0 < 3 || hh.Failures != hh.Probes {
		t.Errorf("hung: %d probes in 4 intervals, %d failures of %d", hh.Probes-p0, hh.Failures, hh.Probes)
	}
	if hung.most.Load() > 2 {
		t.Errorf("hung host had %d connections open at once", hung.most.Load())
	}
	if g1 > g0+10 {
		t.Errorf("goroutines grew from %d to %d while probing the hung host", g0, g1)
	}

	// node2's host stops: down within interval + timeout, logged once.
	buf, _ := logBuffers.Load(logTo)
	logs := buf.(*lockedBuffer)
	logMark := len(logs.String())
	stopped := time.Now()
	node2.stop()
	down := waitPeer(t, ctx, "node2", isDown)
	took := time.Since(stopped)
	t.Logf("node2 down %v after its host stopped: %s", took, down.LastError)
	if !strings.Contains(down.LastError, "no answer within 800ms on the open connection") && !strings.Contains(down.LastError, "no connection within 800ms") {
		t.Errorf("node2's reason: %q", down.LastError)
	}
	if took > testInterval+testTimeout+time.Second {
		t.Errorf("node2 reported down %v after it stopped; want within interval+timeout (%v)", took, testInterval+testTimeout)
	}
	f2 := down.Failures
	waitPeer(t, ctx, "node2", func(h tsnet.PeerHealth) bool { return h.Failures >= f2+2 })
	m = scrapePeers(t)
	if m["clawguard_tailnet_peer_up"]["node2"] != 0 || m["clawguard_tailnet_peer_probe_failures_total"]["node2"] < float64(f2+2) {
		t.Errorf("metrics with node2 down: %v", m)
	}
	newLogs := logs.String()[logMark:]
	if n := strings.Count(newLogs, `"msg":"tailnet peer down","peer":"node2"`); n != 1 {
		t.Errorf("node2 going down was logged %d times, want once:\n%s", n, newLogs)
	}
	if !strings.Contains(newLogs, `"level":"warn"`) {
		t.Errorf("the down line is not a warning:\n%s", newLogs)
	}

	// A forced reload of the same config keeps every peer's history.
	before, _ := tsnet.PeerStatus("node1")
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	after, _ := tsnet.PeerStatus("node1")
	if after.Probes < before.Probes || !after.Since.Equal(before.Since) {
		t.Errorf("reload reset node1's history: %+v → %+v", before, after)
	}

	// Later probes dial afresh and find no host.
	down = waitPeer(t, ctx, "node2", func(h tsnet.PeerHealth) bool {
		return strings.Contains(h.LastError, "no connection within 800ms")
	})
	t.Logf("node2 then: %s", down.LastError)

	// node2's host comes back (same key, same name), its sidecar first
	// answering 503 with a clawguard error body: down with the status and
	// the code; then healthy: up again, the reason it was down kept.
	var ready atomic.Bool
	node2.serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			wire.WriteError(w, http.StatusServiceUnavailable, "docker_unreachable", "the Docker Engine does not answer")
			return
		}
		healthz(w, r)
	}))
	unready := waitPeer(t, ctx, "node2", func(h tsnet.PeerHealth) bool {
		return h.LastError == `GET /healthz answered 503 Service Unavailable (code "docker_unreachable")`
	})
	if unready.Up {
		t.Errorf("node2 answering 503: %+v", unready)
	}
	ready.Store(true)
	back := waitPeer(t, ctx, "node2", isUp)
	if back.LastError == "" || back.LastErrorAt.After(back.Since) || !back.Since.After(down.Since) {
		t.Errorf("node2 back: %+v (was down: %+v)", back, down)
	}
	if !strings.Contains(logs.String()[logMark:], `"msg":"tailnet peer up","peer":"node2"`) {
		t.Error("node2 coming back was not logged")
	}
	if m = scrapePeers(t); m["clawguard_tailnet_peer_up"]["node2"] != 1 {
		t.Errorf("clawguard_tailnet_peer_up after node2 came back = %v", m["clawguard_tailnet_peer_up"])
	}

	// node1 stayed up throughout.
	if h, _ := tsnet.PeerStatus("node1"); h.Failures != failures1 || !h.Up {
		t.Errorf("node1 failed %d probes while other hosts came and went: %+v", h.Failures-failures1, h)
	}

	// A changed spec starts that peer afresh; one gone from the config
	// stops being probed.
	peers["hung"] = peerConfig("hung:18791", "path", "/other")
	delete(peers, "node2")
	if err := caddy.Load(caddyJSON(t, peerApp(state, nodes, peers), logTo), true); err != nil {
		t.Fatal(err)
	}
	if h, _ := tsnet.PeerStatus("hung"); h.Probes > 1 || h.Failures > 1 {
		t.Errorf("hung with a new path kept the old history: %+v", h)
	}
	if h, ok := tsnet.PeerStatus("node2"); ok {
		t.Errorf("node2 still watched after it left the config: %+v", h)
	}
	if m = scrapePeers(t); len(m["clawguard_tailnet_peer_up"]) != 2 {
		t.Errorf("metrics after node2 left the config: %v", m)
	}
}

// promtoolCheck runs `promtool check metrics` on the families of raw
// whose names start with prefix, if promtool is installed.
func promtoolCheck(t *testing.T, raw []byte, prefix string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		return
	}
	var b strings.Builder
	for line := range strings.SplitSeq(string(raw), "\n") {
		if name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE "); strings.HasPrefix(name, prefix) {
			b.WriteString(line + "\n")
		}
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
