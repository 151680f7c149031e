package caddymodule

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"tailscale.com/tstest"
	"tailscale.com/tstest/integration/testcontrol"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/internal/testport"
	"github.com/clawguard/clawguard/pairclient"
	cgtailnet "github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
	"github.com/clawguard/clawguard/wire"
)

// tailnetAdmin is the admin port of every tailnet test's config. Caddy's
// admin server outlives caddy.Stop; with one port it is started once, before
// the first ResourceCheck, and later loads do not change the goroutine count.
var tailnetAdmin = sync.OnceValue(func() int {
	port, _, err := testport.Reserve() // held until the test binary exits
	if err != nil {
		panic(err)
	}
	return port
})

const tailnetTestToken = "tailnet-token-0123456789abcdefghij"

// tailnetEnv is one tailnet test's world: an offline tailnet whose control
// server honours tag:ci, tag:prod and tag:gate, and a state directory for
// Caddy's nodes that outlives them.
type tailnetEnv struct {
	ctx   context.Context
	tn    *tsnettest.Tailnet
	state string
}

// tailnetTest prepares a tailnet test: Caddy's process-wide goroutines
// started, the goroutine check armed, and a check that every node stopped
// before the state directory goes.
func tailnetTest(t testing.TB) *tailnetEnv {
	t.Helper()
	if err := testcaddy.LoadErr(tailnetGlobal("")); err != nil {
		t.Fatalf("warming up Caddy: %v", err)
	}
	testcaddy.Stop()
	tstest.ResourceCheck(t)
	e := &tailnetEnv{state: t.TempDir()}
	t.Cleanup(func() {
		for deadline := time.Now().Add(15 * time.Second); len(cgtailnet.Health()) > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("tailnet nodes left running: %+v", cgtailnet.Health())
				return
			}
		}
	})
	t.Setenv("CLAWGUARD_TEST_TAILNET_TOKEN", tailnetTestToken)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e.ctx = ctx
	e.tn = tsnettest.Start(t, func(c *testcontrol.Server) {
		c.TagOwners = map[string][]string{"tag:ci": nil, "tag:prod": nil, "tag:gate": nil}
	})
	return e
}

// tailnetGlobal is the global options block of the tailnet tests, with
// extra (already indented) option lines inside it.
func tailnetGlobal(extra string) string {
	return testcaddy.Global(tailnetAdmin(), extra)
}

// node is the `tailnet` global option for one node on the test's tailnet.
func (e *tailnetEnv) node(name string) string {
	return fmt.Sprintf(`	tailnet {
		state_dir %s
		node %s {
			control_url %s
			ephemeral
		}
	}
`, e.state, name, e.tn.ControlURL)
}

// tailnetReply is a gate's answer to a request over the tailnet.
type tailnetReply struct {
	status int
	code   string      // the JSON error code of a refusal
	seen   http.Header // what the upstream received, on 200
}

// over sends a GET from c to url with headers (Host sets the Host).
func over(t *testing.T, c *tsnettest.Client, url string, headers map[string]string) tailnetReply {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", url, c.Srv.Hostname, err)
	}
	defer res.Body.Close()
	return decodeReply(t, res)
}

func decodeReply(t *testing.T, res *http.Response) tailnetReply {
	t.Helper()
	b, _ := io.ReadAll(res.Body)
	r := tailnetReply{status: res.StatusCode}
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &r.seen); err != nil {
			t.Fatalf("upstream answer %q: %v", b, err)
		}
		return r
	}
	var e wire.ErrorBody
	json.Unmarshal(b, &e)
	r.code = e.Code
	return r
}

// loopbackLooking are headers that try to pass a request off as local or
// as someone else: a forged identity, proxy headers naming loopback, a
// loopback Host and Origin.
func loopbackLooking(port int) map[string]string {
	return map[string]string{
		"Host":                 fmt.Sprintf("localhost:%d", port),
		"Origin":               fmt.Sprintf("http://localhost:%d", port),
		"X-Forwarded-For":      "127.0.0.1",
		"X-Real-Ip":            "127.0.0.1",
		"X-Clawguard-Identity": "local",
		"X-Clawguard-Method":   "local",
	}
}

// TestGateTailnetIdentity: real tsnet nodes reach the gate (real Caddy) over
// the tailnet, and the upstream sees who they are; users and tags the
// policy does not name get 403; nothing a tailnet peer sends makes it local;
// without a policy, tailnet requests need a credential.
func TestGateTailnetIdentity(t *testing.T) {
	e := tailnetTest(t)
	ctx := e.ctx
	alice := e.tn.Client(t, ctx, "alice")
	mallory := e.tn.Client(t, ctx, "mallory")
	ci := e.tn.Client(t, ctx, "ci", "tag:ci")
	prod := e.tn.Client(t, ctx, "prod", "tag:prod")

	up := upstream(t)
	policyPort, openPort := testcaddy.FreePort(t), testcaddy.FreePort(t)
	// The policy names alice in capitals: logins compare without case.
	testcaddy.Load(t, tailnetGlobal(e.node("gate"))+fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1 tailnet/gate
	clawguard {
		token {env.CLAWGUARD_TEST_TAILNET_TOKEN}
		tailnet_identity {
			allow_users %s
			allow_tags tag:ci
		}
		state_dir %s
	}
	reverse_proxy %s
}

http://:%d {
	bind 127.0.0.1 tailnet/gate
	clawguard {
		token {env.CLAWGUARD_TEST_TAILNET_TOKEN}
		state_dir %s
	}
	reverse_proxy %s
}
`, policyPort, strings.ToUpper(alice.Login), t.TempDir(), up.Listener.Addr(), openPort, t.TempDir(), up.Listener.Addr()))

	ip := alice.WaitPeer(t, ctx, "gate")
	policyURL := fmt.Sprintf("http://%s:%d/", ip, policyPort)
	openURL := fmt.Sprintf("http://%s:%d/", ip, openPort)
	identity := func(r tailnetReply) string { return r.seen.Get("X-Clawguard-Identity") }

	// Allowed users and tags reach the upstream as themselves.
	if r := over(t, alice, policyURL, nil); r.status != 200 || identity(r) != "tailnet:"+alice.Login || r.seen.Get("X-Clawguard-Method") != "tailnet" {
		t.Fatalf("alice: %d %q %v", r.status, r.code, r.seen)
	}
	if r := over(t, ci, policyURL, nil); r.status != 200 || identity(r) != "tailnet:tag:ci" {
		t.Fatalf("tag:ci node: %d %q %v", r.status, r.code, r.seen)
	}
	// Others get 403: a user not listed, a tag not listed.
	if r := over(t, mallory, policyURL, nil); r.status != 403 || r.code != "forbidden" {
		t.Fatalf("mallory: %d %q, want 403 forbidden", r.status, r.code)
	}
	if r := over(t, prod, policyURL, nil); r.status != 403 || r.code != "forbidden" {
		t.Fatalf("tag:prod node: %d %q, want 403 forbidden", r.status, r.code)
	}

	// Loopback-looking headers change nothing over the tailnet: mallory is
	// still refused, alice is still alice, and the forged identity headers
	// never reach the upstream.
	if r := over(t, mallory, policyURL, loopbackLooking(policyPort)); r.status != 403 {
		t.Fatalf("mallory with loopback-looking headers: %d %q, want 403", r.status, r.code)
	}
	if r := over(t, alice, policyURL, loopbackLooking(policyPort)); r.status != 200 || identity(r) != "tailnet:"+alice.Login {
		t.Fatalf("alice with loopback-looking headers: %d %q %v", r.status, r.code, r.seen)
	}
	// A presented credential decides before the tailnet identity.
	if r := over(t, alice, policyURL, map[string]string{"Authorization": "Bearer " + tailnetTestToken}); r.status != 200 || identity(r) != "token:CLAWGUARD_TEST_TAILNET_TOKEN" {
		t.Fatalf("alice with the token: %d %q %v", r.status, r.code, r.seen)
	}

	// Without tailnet_identity: a token still works over the tailnet, a
	// wrong one fails, and no credential means 401 — not local trust, which
	// the same site gives a loopback client.
	if r := over(t, mallory, openURL, loopbackLooking(openPort)); r.status != 401 || r.code != "unauthenticated" {
		t.Fatalf("no policy, no credential, loopback-looking: %d %q, want 401 unauthenticated", r.status, r.code)
	}
	if r := over(t, mallory, openURL, map[string]string{"Authorization": "Bearer " + tailnetTestToken}); r.status != 200 || identity(r) != "token:CLAWGUARD_TEST_TAILNET_TOKEN" {
		t.Fatalf("no policy, token: %d %q %v", r.status, r.code, r.seen)
	}
	if r := over(t, mallory, openURL, map[string]string{"Authorization": "Bearer wrong-wrong-wrong-wrong"}); r.status != 401 || r.code != "invalid_credentials" {
		t.Fatalf("no policy, wrong token: %d %q", r.status, r.code)
	}
	local := (&gateEnv{base: fmt.Sprintf("http://127.0.0.1:%d", openPort)}).do(t, "", "GET", "/", nil)
	if local.status != 200 || local.seen.Get("X-Clawguard-Identity") != "local" {
		t.Fatalf("loopback client of the same site: %d %v, want local", local.status, local.seen)
	}

	// Pairing: auto-approval is for local requests; over the tailnet a
	// pairing request waits for a person, while a loopback one is approved.
	pair := func(base string, hc *http.Client) string {
		key, err := pairclient.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		s, err := pairclient.NewSession(base, key, hc)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Request(ctx, "phone")
		if err != nil {
			t.Fatalf("pairing request to %s: %v", base, err)
		}
		return res.Status
	}
	if st := pair(strings.TrimSuffix(openURL, "/"), mallory.HTTP); st != "pending" {
		t.Errorf("pairing over the tailnet: %s, want pending", st)
	}
	if st := pair(fmt.Sprintf("http://127.0.0.1:%d", openPort), testcaddy.Client("")); st != "approved" {
		t.Errorf("pairing from loopback: %s, want approved", st)
	}

	// The metrics count tailnet identities as method "tailnet": alice twice
	// and ci once let in; mallory twice and prod once refused.
	fams, _ := scrape(t, tailnetAdmin())
	for result, want := range map[string]float64{"success": 3, "failure": 3} {
		if got := counter(fams, "clawguard_auth_attempts_total", map[string]string{"method": "tailnet", "result": result}); got != want {
			t.Errorf("clawguard_auth_attempts_total{method=tailnet,result=%s} = %v, want %v", result, got, want)
		}
	}
	nodeUp := fams["clawguard_tailnet_node_up"]
	if nodeUp == nil || len(nodeUp.Metric) != 1 || nodeUp.Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("clawguard_tailnet_node_up: %v", nodeUp)
	}
}

// TestGateTailnetProxyProtocol tries to break "never local" with the one
// thing that changes a connection's addresses: a proxy_protocol listener
// wrapper that trusts every peer, so a tailnet client can claim to be
// 127.0.0.1. Caddy honours the claim (the upstream's X-Forwarded-For says
// 127.0.0.1); the gate still knows the connection came over the tailnet and
// from whom.
func TestGateTailnetProxyProtocol(t *testing.T) {
	e := tailnetTest(t)
	ctx := e.ctx
	alice := e.tn.Client(t, ctx, "alice")
	mallory := e.tn.Client(t, ctx, "mallory")
	up := upstream(t)
	policyPort, openPort := testcaddy.FreePort(t), testcaddy.FreePort(t)
	testcaddy.Load(t, tailnetGlobal(e.node("gate")+`	servers {
		listener_wrappers {
			proxy_protocol {
				allow 0.0.0.0/0 ::/0
			}
		}
	}
`)+fmt.Sprintf(`
http://:%d {
	bind tailnet/gate
	clawguard {
		tailnet_identity {
			allow_users %s
		}
		trusted_proxy 127.0.0.1/32 {
			user_header X-Remote-User
			allow_loopback
		}
		state_dir %s
	}
	reverse_proxy %s
}

http://:%d {
	bind tailnet/gate
	clawguard {
		token {env.CLAWGUARD_TEST_TAILNET_TOKEN}
		state_dir %s
	}
	reverse_proxy %s
}
`, policyPort, alice.Login, t.TempDir(), up.Listener.Addr(), openPort, t.TempDir(), up.Listener.Addr()))
	ip := alice.WaitPeer(t, ctx, "gate")

	// send writes a PROXY v1 line claiming 127.0.0.1, then a request.
	send := func(c *tsnettest.Client, port int, headers string) tailnetReply {
		t.Helper()
		conn, err := c.Srv.Dial(ctx, "tcp", fmt.Sprintf("%s:%d", ip, port))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "PROXY TCP4 127.0.0.1 127.0.0.1 40000 %d\r\nGET / HTTP/1.1\r\nHost: localhost:%d\r\n%sConnection: close\r\n\r\n", port, port, headers)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		defer res.Body.Close()
		return decodeReply(t, res)
	}

	// Claiming loopback with no credential: 401, never local.
	if r := send(mallory, openPort, ""); r.status != 401 {
		t.Fatalf("PROXY-claimed loopback without a credential: %d %q %v, want 401", r.status, r.code, r.seen)
	}
	// A peer the policy refuses stays refused, even asserting a user the
	// way a trusted loopback proxy would.
	if r := send(mallory, policyPort, "X-Remote-User: alice\r\n"); r.status != 403 {
		t.Fatalf("mallory claiming loopback and asserting a user: %d %q %v, want 403", r.status, r.code, r.seen)
	}
	// alice is alice; the claim reached Caddy (X-Forwarded-For) but not the gate's judgement.
	r := send(alice, policyPort, "X-Remote-User: bob\r\n")
	if r.status != 200 || r.seen.Get("X-Clawguard-Identity") != "tailnet:"+alice.Login || r.seen.Get("X-Remote-User") != "" {
		t.Fatalf("alice claiming loopback: %d %q %v", r.status, r.code, r.seen)
	}
	if xff := r.seen.Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Fatalf("upstream saw X-Forwarded-For %q: the PROXY claim was not honoured, so this test tests nothing", xff)
	}
}
