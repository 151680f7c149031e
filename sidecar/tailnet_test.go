package sidecar_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tailscale.com/tstest"
	"tailscale.com/tstest/integration/testcontrol"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
)

// TestSidecarOverTailnet is the multi-host setup with two tsnet nodes in
// one test: the sidecar daemon (real Docker) serves on its node "side"; the
// gate (real Caddy) on the node "gatehost", tagged tag:clawguard-gate,
// reaches it with the clawguard_tailnet transport by its MagicDNS name and
// signs the identity it admitted. The sidecar serves only that tag, and
// only signed identities.
func TestSidecarOverTailnet(t *testing.T) {
	admin := testcaddy.FreePort(t)
	// Caddy's admin server outlives caddy.Stop: start it before counting.
	if err := testcaddy.LoadErr(testcaddy.Global(admin)); err != nil {
		t.Fatal(err)
	}
	tstest.ResourceCheck(t)
	nodeDir := t.TempDir() // outlives the nodes: removed after they stop
	t.Cleanup(func() {
		for deadline := time.Now().Add(15 * time.Second); len(tsnet.Health()) > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("tailnet nodes left running: %+v", tsnet.Health())
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tn := tsnettest.Start(t, func(c *testcontrol.Server) {
		c.TagOwners = map[string][]string{"tag:clawguard-gate": nil}
	})

	key := []byte("0123456789abcdef0123456789abcdef-gate-key")
	tport := uint16(testcaddy.FreePort(t))
	logs := &logBuffer{}
	d := startDaemon(t, `{"instance": "INSTANCE", "identity_keys": {"gate1": "sidecar-identity"}}`, func(o *sidecar.DaemonOptions) {
		if err := o.Secrets.(*vault.Vault).Set("sidecar-identity", key); err != nil {
			t.Fatal(err)
		}
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		o.Tailnet = &sidecar.TailnetOptions{
			Node:   "side",
			Config: tsnet.NodeConfig{ControlURL: tn.ControlURL, Ephemeral: true, StateDir: nodeDir + "/side"},
			Port:   tport,
			Policy: tsnet.Policy{AllowTags: []string{"tag:clawguard-gate"}},
		}
	})
	t.Setenv(vault.PassphraseEnv, "test passphrase") // the vault testVault made
	token := "gate-token-0123456789abcdefghijkl"
	t.Setenv("CLAWGUARD_TEST_GATE_TOKEN", token)
	// A server on the host's network that the gate's signed identity must
	// never reach through the tailnet transport.
	offnet := make(chan string, 4)
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offnet <- r.Header.Get(wire.HeaderIdentity)
	}))
	defer host.Close()
	port := testcaddy.FreePort(t)
	testcaddy.Load(t, testcaddy.Global(admin, fmt.Sprintf(`	tailnet {
		state_dir %s
		node gatehost {
			control_url %s
			ephemeral
			tags tag:clawguard-gate
		}
	}
`, nodeDir, tn.ControlURL))+fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token {env.CLAWGUARD_TEST_GATE_TOKEN}
		local_trust off
		state_dir %s
	}
	handle_path /sidecar/* {
		reverse_proxy side:%d {
			transport clawguard_tailnet gatehost {
				identity_key gate1 {vault.sidecar-identity}
				state_dir %s
			}
		}
	}
	handle_path /offnet/* {
		reverse_proxy %s {
			transport clawguard_tailnet gatehost {
				identity_key gate1 {vault.sidecar-identity}
				state_dir %s
			}
		}
	}
	handle_path /socket/* {
		reverse_proxy unix/%s {
			transport clawguard_signed {
				identity_key gate1 {vault.sidecar-identity}
				state_dir %s
			}
		}
	}
}
`, port, t.TempDir(), tport, d.state, strings.TrimPrefix(host.URL, "http://"), d.state, d.socket, d.state))

	gate := func(method, path, body string) (int, map[string]any) {
		return throughGate(t, port, token, method, path, body)
	}
	// The nodes come up in the background: wait until both are on the
	// tailnet, then until the gate gets through.
	mallory := tn.Client(t, ctx, "mallory")
	rogue := tn.Client(t, ctx, "rogue", "tag:clawguard-gate")
	ip := mallory.WaitPeer(t, ctx, "side")
	mallory.WaitPeer(t, ctx, "gatehost")
	for {
		code, body := gate("GET", "/sidecar/v1/sandboxes", "")
		if code == 200 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("gate to sidecar over the tailnet: %d %v\nsidecar log:\n%s", code, body, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The sidecar acts on the identity the gate signed: it refuses (no
	// sandbox profile), and its log names the token identity.
	if code, body := gate("POST", "/sidecar/v1/exec", `{"agent":"main","argv":["/bin/echo","hi"]}`); code != 403 || body["code"] != "no_sandbox_profile" {
		t.Fatalf("exec over the tailnet: %d %v", code, body)
	}
	if !strings.Contains(logs.String(), `"identity":"token:CLAWGUARD_TEST_GATE_TOKEN"`) {
		t.Fatalf("sidecar log does not name the gate's identity:\n%s", logs.String())
	}

	// An upstream that is not a tailnet address is not dialed over the
	// host's network instead.
	if code, _ := gate("GET", "/offnet/healthz", ""); code != http.StatusBadGateway {
		t.Errorf("clawguard_tailnet to a host address: %d, want 502", code)
	}
	select {
	case id := <-offnet:
		t.Errorf("clawguard_tailnet dialed the host's network: a server there got a request as %q", id)
	default:
	}

	// What the tailnet hop costs, next to the same gate and sidecar over
	// the unix socket (medians of 25 calls each, taking turns).
	var viaTailnet, viaSocket []time.Duration
	for range 25 {
		for _, p := range []struct {
			path string
			into *[]time.Duration
		}{{"/sidecar/v1/sandboxes", &viaTailnet}, {"/socket/v1/sandboxes", &viaSocket}} {
			start := time.Now()
			if code, body := gate("GET", p.path, ""); code != 200 {
				t.Fatalf("%s: %d %v", p.path, code, body)
			}
			*p.into = append(*p.into, time.Since(start))
		}
	}
	median := func(ds []time.Duration) time.Duration { slices.Sort(ds); return ds[len(ds)/2] }
	t.Logf("GET /v1/sandboxes through the gate: over the tailnet %v, over the unix socket %v (medians)", median(viaTailnet), median(viaSocket))

	// Straight to the sidecar's tailnet port: a user node the policy does
	// not name is refused before anything; a node with the gate's tag gets
	// /healthz but no API call without the gate's signature, whatever
	// identity headers it forges.
	direct := func(c *tsnettest.Client, path string) (int, string) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s:%d%s", ip, tport, path), nil)
		req.Header.Set(wire.HeaderIdentity, "local")
		req.Header.Set(wire.HeaderMethod, "local")
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		code, _ := out["code"].(string)
		return resp.StatusCode, code
	}
	if code, c := direct(mallory, "/healthz"); code != 403 || c != "peer_refused" {
		t.Errorf("user node not in the policy: %d %s, want 403 peer_refused", code, c)
	}
	if code, c := direct(mallory, "/v1/sandboxes"); code != 403 || c != "peer_refused" {
		t.Errorf("user node not in the policy, API: %d %s, want 403 peer_refused", code, c)
	}
	if code, _ := direct(rogue, "/healthz"); code != 200 {
		t.Errorf("allowed tag, /healthz: %d", code)
	}
	if code, c := direct(rogue, "/v1/sandboxes"); code != 401 || c != "no_identity" {
		t.Errorf("allowed tag with forged, unsigned identity: %d %s, want 401 no_identity", code, c)
	}

	// The socket serves as before, and the sidecar's metrics show its node.
	if code, _ := d.do("GET", "/healthz", nil, local); code != 200 {
		t.Errorf("socket /healthz: %d", code)
	}
	if up := d.metrics()["clawguard_tailnet_node_up"]; up == nil || len(up.Metric) != 1 || up.Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("sidecar metrics clawguard_tailnet_node_up: %v", up)
	}
	// The tailnet port is served inside the tailnet only.
	addrs, _ := net.InterfaceAddrs()
	hosts := []string{"127.0.0.1", "::1"}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			hosts = append(hosts, n.IP.String())
		}
	}
	for _, h := range hosts {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(h, fmt.Sprint(tport)), time.Second); err == nil {
			c.Close()
			t.Errorf("the sidecar's tailnet port %d answers on host address %s", tport, h)
		}
	}
}

// TestSidecarTailnetRefusals: the sidecar does not serve the tailnet
// without the gate's signed identity or without a peer policy, and a node
// auth key that does not resolve is an error at start; each leaves nothing
// behind (no socket, no node).
func TestSidecarTailnetRefusals(t *testing.T) {
	cli := sandboxtest.Client(t)
	inst := sandboxtest.Instance(t, cli)
	closed := fmt.Sprintf("http://127.0.0.1:%d", testcaddy.FreePort(t))
	gateOnly := tsnet.Policy{AllowTags: []string{"tag:clawguard-gate"}}
	for _, c := range []struct {
		name, config string
		tail         sidecar.TailnetOptions
		want         string
	}{
		{"unsigned identities", `{"instance": "INSTANCE"}`,
			sidecar.TailnetOptions{Node: "side", Config: tsnet.NodeConfig{ControlURL: closed}, Policy: gateOnly},
			"serving on the tailnet needs identity_keys"},
		{"no peer policy", `{"instance": "INSTANCE", "identity_keys": {"gate1": "sidecar-identity"}}`,
			sidecar.TailnetOptions{Node: "side", Config: tsnet.NodeConfig{ControlURL: closed}},
			"tailnet policy: allows nobody"},
		{"auth key unset", `{"instance": "INSTANCE", "identity_keys": {"gate1": "sidecar-identity"}}`,
			sidecar.TailnetOptions{Node: "side", Config: tsnet.NodeConfig{ControlURL: closed, AuthKey: "{env.CLAWGUARD_TEST_UNSET_TS_KEY}"}, Policy: gateOnly},
			"node side: auth_key: evaluated placeholder {env.CLAWGUARD_TEST_UNSET_TS_KEY} is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			state := t.TempDir()
			if err := os.WriteFile(filepath.Join(state, wire.FileSidecarConfig), []byte(strings.ReplaceAll(c.config, "INSTANCE", inst)), 0o600); err != nil {
				t.Fatal(err)
			}
			secrets := testVault(t, state)
			if err := secrets.Set("sidecar-identity", []byte("0123456789abcdef0123456789abcdef-gate-key")); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := sidecar.Run(ctx, sidecar.DaemonOptions{StateDir: state, Secrets: secrets, Tailnet: &c.tail,
				Ready: func(string) { cancel() }})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run: %v, want an error saying %q", err, c.want)
			}
			if _, err := os.Stat(filepath.Join(state, wire.FileSidecarSocket)); !os.IsNotExist(err) {
				t.Errorf("socket left behind: %v", err)
			}
			if h := tsnet.Health(); len(h) != 0 {
				t.Errorf("nodes running after a refused start: %+v", h)
			}
		})
	}
}
