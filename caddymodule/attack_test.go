package caddymodule

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairclient"
)

// Attacks an outsider tried against the gate with curl: each test sends
// what they sent, through real Caddy.

// rawRequest sends one HTTP/1.1 request with the request target exactly as
// given (no client-side cleaning or escaping) and returns the status and
// body.
func rawRequest(t *testing.T, base, method, target string, headers map[string]string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, strings.TrimPrefix(base, "http://"))
	for k, v := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestAdminOnlyOnItsOwnOrigin: the gateway's site answers every spelling of
// the admin API and UI with 404 — for a local caller and for a valid token
// alike — and never hands one to the upstream, which might read it as
// /.clawguard/…; the admin listener serves them.
func TestAdminOnlyOnItsOwnOrigin(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	targets := []string{
		"/.clawguard/api/session", "/.clawguard/api/devices", "/.clawguard/api/pairing",
		"/.clawguard/api/events", "/.clawguard/api/approvals", "/.clawguard/ui/", "/.clawguard/ui",
		"/.clawguard/ui/app.js", "/.CLAWGUARD/api/devices", "/.ClawGuard/UI/", "//.clawguard/api/devices",
		"/%2eclawguard/api/devices", "/%2Eclawguard%2Fapi%2Fdevices", "/%252eclawguard/api/devices",
		"/x/../.clawguard/api/devices", "/.clawguard;v=1/api/devices", "/.clawguard./api/devices",
		"/.clawguard%00/api/devices", `/\.clawguard\api\devices`, "/.clawguard%5capi%5cdevices",
		"/.clawguard%20/api/devices", "/.CLAWGUARD/pair/challenge",
	}
	for _, who := range []map[string]string{nil, {"Authorization": "Bearer " + testToken}} {
		for _, target := range targets {
			for _, method := range []string{"GET", "POST"} {
				st, body := rawRequest(t, e.base, method, target, who)
				// The echo upstream would answer 200 with the headers it saw.
				if strings.Contains(body, "X-Clawguard-Identity") {
					t.Errorf("%s %s (auth %v) reached the upstream: %d", method, target, who != nil, st)
					continue
				}
				if st != 404 && st != 400 {
					t.Errorf("%s %s (auth %v) on the gateway's site: %d %s", method, target, who != nil, st, body)
				}
			}
		}
	}
	// The admin listener is where they live.
	if st, body := rawRequest(t, e.ui, "GET", "/.clawguard/api/session", nil); st != 200 || !strings.Contains(body, "csrf_token") {
		t.Fatalf("admin listener session: %d %s", st, body)
	}
	if st, _ := rawRequest(t, e.ui, "GET", "/anything-else", nil); st != 404 {
		t.Fatalf("admin listener serves a non-admin path: %d", st)
	}
	// The pairing protocol stays on the gateway's site, spelt exactly.
	if st, _ := rawRequest(t, e.base, "POST", "/.clawguard/pair/challenge", nil); st != 200 {
		t.Fatalf("pairing challenge on the gateway's site: %d", st)
	}
}

// TestAdminListenRefusesSharedNetworks: the admin origin binds loopback or
// the tailnet, never an address other hosts reach.
func TestAdminListenRefusesSharedNetworks(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:18788", ":18788", "192.0.2.10:18788", "[::]:18788", "unix//tmp/x.sock", "127.0.0.1:1-2"} {
		_, err := testcaddy.Adapt(fmt.Sprintf("http://:1 {\n\tclawguard {\n\t\tadmin_listen %s\n\t}\n}\n", addr))
		if err == nil {
			t.Errorf("admin_listen %s accepted", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:18788", "[::1]:18788", "localhost:18788", "tailnet/gate:18788", "off"} {
		if _, err := testcaddy.Adapt(fmt.Sprintf("http://:1 {\n\tclawguard {\n\t\tadmin_listen %s\n\t}\n}\n", addr)); err != nil {
			t.Errorf("admin_listen %s: %v", addr, err)
		}
	}
}

// TestAdminListenNeverShared: the admin origin is never split with another
// socket (Caddy's own listeners use SO_REUSEPORT, which would let a second
// process share the address and get half the connections), nor claimed
// twice in one config.
func TestAdminListenNeverShared(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		return serr
	}}
	holder, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	site := func(admin string) string {
		return fmt.Sprintf("http://:%d {\n\tbind 127.0.0.1\n\tclawguard {\n\t\tstate_dir %s\n\t\tadmin_listen %s\n\t}\n\trespond 204\n}\n",
			testcaddy.FreePort(t), t.TempDir(), admin)
	}
	err = testcaddy.LoadErr(testcaddy.Global(testcaddy.FreePort(t)) + site(holder.Addr().String()))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("admin listener on an address another socket holds: %v", err)
	}
	ui := fmt.Sprintf("127.0.0.1:%d", testcaddy.FreePort(t))
	err = testcaddy.LoadErr(testcaddy.Global(testcaddy.FreePort(t)) + site(ui) + site(ui))
	if err == nil || !strings.Contains(err.Error(), "claimed by two clawguard handlers") {
		t.Fatalf("one admin address claimed twice: %v", err)
	}
}

// TestRateLimitIgnoresOriginRotation: 25 password guesses, each from a new
// Origin, are one client's guesses.
func TestRateLimitIgnoresOriginRotation(t *testing.T) {
	e := startGate(t, "")
	var statuses []int
	for i := range 25 {
		r := e.do(t, "127.0.0.21", "GET", "/", map[string]string{
			"Origin": fmt.Sprintf("https://evil-%d.example", i), "Authorization": basic("alice", fmt.Sprintf("guess-%d", i))})
		statuses = append(statuses, r.status)
	}
	if statuses[24] != 429 {
		t.Fatalf("guesses with rotating Origins were not limited: %v", statuses)
	}
	// The local user on that address is not the page.
	if r := e.do(t, "127.0.0.21", "GET", "/", nil); r.status != 200 || r.seen.Get("X-Clawguard-Identity") != "local" {
		t.Fatalf("local user after the page's lockout: %d", r.status)
	}
}

// TestLockoutBlocksOnlyWhoFailed: failures relayed by a proxy on this host,
// and malformed pairing bodies, lock out neither the local user, nor the
// admin UI, nor a paired device, nor another site; the relayed guesser
// itself stays locked out, its good guesses included.
func TestLockoutBlocksOnlyWhoFailed(t *testing.T) {
	dir := t.TempDir()
	up := upstream(t)
	portA, portB, ui := testcaddy.FreePort(t), testcaddy.FreePort(t), testcaddy.FreePort(t)
	site := func(port int, admin string) string {
		return fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token %s
		password alice %s
		state_dir %s
		admin_listen %s
	}
	reverse_proxy %s
}
`, port, testToken, htpasswdHash(t, "alice", testPassword), dir, admin, strings.TrimPrefix(up.URL, "http://"))
	}
	testcaddy.Load(t, testcaddy.Global(testcaddy.FreePort(t))+site(portA, fmt.Sprintf("127.0.0.1:%d", ui))+site(portB, "off"))
	a := &pairEnv{base: fmt.Sprintf("http://127.0.0.1:%d", portA), ui: fmt.Sprintf("http://127.0.0.1:%d", ui), dir: dir}
	b := &gateEnv{base: fmt.Sprintf("http://127.0.0.1:%d", portB)}
	ga := &gateEnv{base: a.base}

	// A device paired before the attack.
	dev, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: a.base, Name: "phone", Key: newKey(t), HTTPClient: testcaddy.Client("127.0.0.31")})
	if err != nil {
		t.Fatal(err)
	}

	// Ten malformed pairing bodies from the local user's own address.
	for range 10 {
		call(t, testcaddy.Client("127.0.0.31"), "POST", a.base+"/.clawguard/pair/request", nil, "{")
	}
	if st, _ := call(t, testcaddy.Client("127.0.0.31"), "POST", a.base+"/.clawguard/pair/challenge", nil, ""); st != 200 {
		t.Fatalf("pairing after malformed bodies: %d", st)
	}

	// A proxy on this host relays a remote guesser's wrong tokens.
	relayed := func(auth string) map[string]string {
		return map[string]string{"X-Forwarded-For": "203.0.113.50", "Authorization": auth}
	}
	for range 10 {
		ga.do(t, "127.0.0.31", "GET", "/", relayed("Bearer wrong-guess-wrong-guess"))
	}
	if r := ga.do(t, "127.0.0.31", "GET", "/", relayed("Bearer wrong-guess-wrong-guess")); r.status != 429 {
		t.Fatalf("relayed guesser not locked out: %d", r.status)
	}
	// The guesser's class cannot be told from a right guess: still 429.
	if r := ga.do(t, "127.0.0.31", "GET", "/", relayed("Bearer "+testToken)); r.status != 429 {
		t.Fatalf("a shared token from the locked-out relayed client: %d", r.status)
	}
	// Nobody else is blocked: the local user, the UI, a device (its token
	// cannot be guessed) even through the same proxy, the other site.
	if r := ga.do(t, "127.0.0.31", "GET", "/", nil); r.status != 200 || r.seen.Get("X-Clawguard-Identity") != "local" {
		t.Fatalf("local user locked out by relayed failures: %d", r.status)
	}
	if st, _ := call(t, testcaddy.Client("127.0.0.31"), "GET", a.ui+"/.clawguard/api/session", nil, ""); st != 200 {
		t.Fatalf("admin UI locked out by relayed failures: %d", st)
	}
	if r := ga.do(t, "127.0.0.31", "GET", "/", relayed("Bearer "+dev.Token)); r.status != 200 || !strings.HasPrefix(r.seen.Get("X-Clawguard-Identity"), "device:") {
		t.Fatalf("paired device locked out by the relayed guesser: %d", r.status)
	}
	if r := b.do(t, "127.0.0.31", "GET", "/", relayed("Bearer "+testToken)); r.status != 200 {
		t.Fatalf("another site locked out: %d", r.status)
	}
	// A local process's own failures lock its credentials, but a
	// credential-less local request still gets in.
	for range 11 {
		ga.do(t, "127.0.0.32", "GET", "/", map[string]string{"Authorization": basic("alice", "nope")})
	}
	if r := ga.do(t, "127.0.0.32", "GET", "/", map[string]string{"Authorization": basic("alice", testPassword)}); r.status != 429 {
		t.Fatalf("local password guesser not locked out: %d", r.status)
	}
	if r := ga.do(t, "127.0.0.32", "GET", "/", nil); r.status != 200 {
		t.Fatalf("credential-less local request locked out: %d", r.status)
	}
}

// TestClientIPHeadersAreNeverLocal: a loopback peer that sends a CDN's or
// proxy's client-IP header, or a header of a trusted_proxy rule (stripped,
// as the peer is not that proxy), is relaying a request: never local.
func TestClientIPHeadersAreNeverLocal(t *testing.T) {
	e := startGate(t, `trusted_proxy 10.9.0.0/16 {
			user_header X-Remote-User
			require_header X-Proxy-Secret
		}`)
	for _, h := range []string{"CF-Connecting-IP", "True-Client-IP", "X-Client-IP", "Fly-Client-IP", "X-Cluster-Client-IP",
		"Via", "X-Remote-User", "X-Proxy-Secret", "x-forwarded-host", "X-Real-IP", "Forwarded"} {
		r := e.do(t, "127.0.0.41", "GET", "/", map[string]string{h: "203.0.113.60"})
		if r.status != 401 {
			t.Errorf("loopback request with %s: %d (identity %q), want 401", h, r.status, r.seen.Get("X-Clawguard-Identity"))
		}
	}
	if r := e.do(t, "127.0.0.41", "GET", "/", nil); r.status != 200 || r.seen.Get("X-Clawguard-Identity") != "local" {
		t.Fatalf("plain local request: %d", r.status)
	}
}
