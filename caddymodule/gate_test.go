package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/wire"
)

const (
	testToken    = "tok-0123456789abcdefghijklmnop"
	testPassword = "correct horse battery staple"
)

// upstream is a real HTTP server standing in for the gateway: it echoes the
// request headers it received as JSON, and echoes WebSocket messages.
func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"chat.v1"}, OriginPatterns: []string{"*"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		ctx := r.Context()
		// Greet with what the upstream saw, then echo.
		c.Write(ctx, websocket.MessageText, []byte("hello "+r.Header.Get("X-Clawguard-Identity")+" proto="+c.Subprotocol()+" leaked="+strconv.FormatBool(strings.Contains(r.Header.Get("Sec-WebSocket-Protocol"), "bearer."))))
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// htpasswdHash makes a hash with the real htpasswd when it is installed (as in
// CI), else with x/crypto's bcrypt in htpasswd's $2y$ form.
func htpasswdHash(t *testing.T, user, pass string) string {
	if path, err := exec.LookPath("htpasswd"); err == nil {
		out, err := exec.Command(path, "-nbB", "-C", "5", user, pass).Output()
		if err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		_, hash, _ := strings.Cut(strings.TrimSpace(string(out)), ":")
		return hash
	}
	h, _ := bcrypt.GenerateFromPassword([]byte(pass), 5)
	return "$2y$" + string(h[4:])
}

type gateEnv struct {
	base string // http://127.0.0.1:port
	up   *httptest.Server
}

// startGate runs Caddy with the gate in front of a real upstream. opts are
// extra lines inside the clawguard block.
func startGate(t *testing.T, opts string) *gateEnv {
	t.Helper()
	up := upstream(t)
	port := testcaddy.FreePort(t)
	caddyHash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), 5)
	cfg := testcaddy.Global(testcaddy.FreePort(t)) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token %s
		password alice %s
		password bob %s
		state_dir %s
		%s
	}
	reverse_proxy %s
}
`, port, testToken, htpasswdHash(t, "alice", testPassword),
		base64.StdEncoding.EncodeToString(caddyHash), t.TempDir(), opts, strings.TrimPrefix(up.URL, "http://"))
	testcaddy.Load(t, cfg)
	return &gateEnv{base: fmt.Sprintf("http://127.0.0.1:%d", port), up: up}
}

type reply struct {
	status int
	header http.Header
	seen   http.Header // headers the upstream received (200 only)
	body   string
}

func (e *gateEnv) do(t *testing.T, from, method, path string, headers map[string]string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, e.base+path, nil)
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := testcaddy.Client(from).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.StatusCode == 200 {
		json.Unmarshal(b, &r.seen)
	}
	return r
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// remote marks a request as not local: a loopback peer relaying for someone.
var remote = map[string]string{"X-Forwarded-For": "203.0.113.7"}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestGateMethods(t *testing.T) {
	e := startGate(t, "")
	cases := []struct {
		name     string
		headers  map[string]string
		status   int
		identity string
	}{
		{"token", with(remote, "Authorization", "Bearer "+testToken), 200, "token:"},
		{"wrong token", with(remote, "Authorization", "Bearer "+testToken+"x"), 401, ""},
		{"htpasswd -B hash", with(remote, "Authorization", basic("alice", testPassword)), 200, "user:alice"},
		{"caddy hash-password hash", with(remote, "Authorization", basic("bob", testPassword)), 200, "user:bob"},
		{"wrong password", with(remote, "Authorization", basic("alice", testPassword+"!")), 401, ""},
		{"unknown user", with(remote, "Authorization", basic("carol", testPassword)), 401, ""},
		{"malformed basic", with(remote, "Authorization", "Basic ???"), 401, ""},
		{"no credentials, remote", remote, 401, ""},
		{"local", nil, 200, "local"},
		{"loopback with X-Forwarded-For is not local", map[string]string{"X-Forwarded-For": "127.0.0.1"}, 401, ""},
		{"loopback with Forwarded is not local", map[string]string{"Forwarded": "for=127.0.0.1"}, 401, ""},
		{"foreign Origin is not local", map[string]string{"Origin": "https://evil.example"}, 401, ""},
		{"DNS rebinding is not local", map[string]string{"Host": "evil.example", "Origin": "http://evil.example"}, 401, ""},
		{"same Origin is local", map[string]string{"Origin": "ORIGIN"}, 200, "local"},
		{"wrong token from loopback is refused, not local", map[string]string{"Authorization": "Bearer nope-nope-nope-nope"}, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.headers["Origin"] == "ORIGIN" {
				c.headers = map[string]string{"Origin": e.base}
			}
			r := e.do(t, "", "GET", "/api", c.headers)
			if r.status != c.status {
				t.Fatalf("status %d, want %d (body %s)", r.status, c.status, r.body)
			}
			if c.status == 200 {
				if got := r.seen.Get("X-Clawguard-Identity"); !strings.HasPrefix(got, c.identity) {
					t.Fatalf("upstream saw identity %q, want %q…", got, c.identity)
				}
				if r.seen.Get("Authorization") != "" {
					t.Fatal("credential forwarded to the upstream")
				}
				return
			}
			var body wire.ErrorBody
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Code == "" || body.Error == "" {
				t.Fatalf("refusal body %q is not {error, code}", r.body)
			}
			if c.status == 401 && !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") ||
				c.status == 401 && !strings.Contains(r.header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("WWW-Authenticate %q does not list the schemes", r.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestGateRefusalsDoNotRevealWhichPartIsWrong(t *testing.T) {
	e := startGate(t, "rate_limit off")
	wrongPass := e.do(t, "", "GET", "/", with(remote, "Authorization", basic("alice", "nope")))
	wrongUser := e.do(t, "", "GET", "/", with(remote, "Authorization", basic("nobody", testPassword)))
	wrongToken := e.do(t, "", "GET", "/", with(remote, "Authorization", "Bearer abcdefghijklmnopqrstuvwxyz"))
	if wrongPass.body != wrongUser.body || wrongPass.body != wrongToken.body {
		t.Fatalf("refusals differ:\n%s\n%s\n%s", wrongPass.body, wrongUser.body, wrongToken.body)
	}
}

func TestGateStripsSpoofedIdentityHeaders(t *testing.T) {
	e := startGate(t, "")
	spoof := map[string]string{
		"Authorization":        "Bearer " + testToken,
		"X-Clawguard-Identity": "device:admin",
		"X-Clawguard-Method":   "local",
		"X-Clawguard-Device":   "deadbeef",
		"X-Clawguard-Extra":    "x",
	}
	r := e.do(t, "", "GET", "/", spoof)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if got := r.seen.Get("X-Clawguard-Identity"); !strings.HasPrefix(got, "token:") {
		t.Fatalf("identity %q", got)
	}
	if r.seen.Get("X-Clawguard-Method") != "token" || r.seen.Get("X-Clawguard-Device") != "" || r.seen.Get("X-Clawguard-Extra") != "" {
		t.Fatalf("spoofed headers reached the upstream: %v", r.seen)
	}
}

func TestGateRefusesTokenInURL(t *testing.T) {
	e := startGate(t, "")
	for _, path := range []string{"/ws?token=" + testToken, "/?access_token=" + testToken, "/?x=1&Token=abc"} {
		// Even a local request, which would otherwise pass, is refused: the
		// URL has already leaked into history and logs.
		r := e.do(t, "", "GET", path, nil)
		if r.status != 401 || !strings.Contains(r.body, "credentials_in_url") {
			t.Fatalf("%s: status %d body %s", path, r.status, r.body)
		}
	}
}

func TestGateRateLimit(t *testing.T) {
	e := startGate(t, "")
	bad := with(remote, "Authorization", "Bearer wrong-wrong-wrong-wrong")
	for i := 1; i <= 10; i++ {
		if r := e.do(t, "127.0.0.3", "GET", "/", bad); r.status != 401 {
			t.Fatalf("attempt %d: status %d, want 401", i, r.status)
		}
	}
	r := e.do(t, "127.0.0.3", "GET", "/", bad)
	if r.status != 429 {
		t.Fatalf("11th attempt: status %d, want 429", r.status)
	}
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry < 290 || retry > 300 {
		t.Fatalf("Retry-After %q, want about 300", r.header.Get("Retry-After"))
	}
	// Locked out means locked out: even the right token gets 429, or guessing
	// could go on.
	if r := e.do(t, "127.0.0.3", "GET", "/", with(remote, "Authorization", "Bearer "+testToken)); r.status != 429 {
		t.Fatalf("good credential from the locked-out client: %d", r.status)
	}
	// Another client is unaffected.
	if r := e.do(t, "127.0.0.4", "GET", "/", with(remote, "Authorization", "Bearer "+testToken)); r.status != 200 {
		t.Fatalf("good credential from another IP: %d", r.status)
	}
}

func TestGateRateLimitsForeignOriginApartFromLocalUser(t *testing.T) {
	e := startGate(t, "")
	// A hostile page in the user's browser guesses tokens over the
	// WebSocket subprotocol; its peer is loopback.
	page := map[string]string{"Origin": "https://evil.example", "Sec-WebSocket-Protocol": "bearer.guess-guess-guess-guess"}
	var last int
	for i := 0; i < 11; i++ {
		last = e.do(t, "127.0.0.5", "GET", "/", page).status
	}
	if last != 429 {
		t.Fatalf("foreign-origin guessing not limited: last status %d", last)
	}
	// The local user on the same address still gets in.
	if r := e.do(t, "127.0.0.5", "GET", "/", nil); r.status != 200 || r.seen.Get("X-Clawguard-Identity") != "local" {
		t.Fatalf("local user locked out by the hostile page: %d", r.status)
	}
}

func TestGateTrustedProxy(t *testing.T) {
	e := startGate(t, `trusted_proxy 127.0.0.6/32 {
			user_header X-Remote-User
			require_header X-Proxy-Auth
			allow_users alice
			allow_loopback
		}
		local_trust off`)
	proxied := map[string]string{"X-Remote-User": "alice", "X-Proxy-Auth": "yes", "X-Forwarded-For": "203.0.113.9"}
	r := e.do(t, "127.0.0.6", "GET", "/", proxied)
	if r.status != 200 || r.seen.Get("X-Clawguard-Identity") != "proxy:alice" {
		t.Fatalf("proxy assertion: %d %q", r.status, r.seen.Get("X-Clawguard-Identity"))
	}
	if r := e.do(t, "127.0.0.6", "GET", "/", with(proxied, "X-Remote-User", "mallory")); r.status != 403 {
		t.Fatalf("user outside allow_users: %d", r.status)
	}
	if r := e.do(t, "127.0.0.6", "GET", "/", with(proxied, "X-Proxy-Auth", "")); r.status != 401 {
		t.Fatalf("missing required header: %d", r.status)
	}
	// From any other peer the assertion is ignored and stripped.
	r = e.do(t, "127.0.0.7", "GET", "/", with(proxied, "Authorization", "Bearer "+testToken))
	if r.status != 200 || !strings.HasPrefix(r.seen.Get("X-Clawguard-Identity"), "token:") || r.seen.Get("X-Remote-User") != "" {
		t.Fatalf("untrusted peer's assertion: %d identity %q user header %q", r.status, r.seen.Get("X-Clawguard-Identity"), r.seen.Get("X-Remote-User"))
	}
	if r := e.do(t, "127.0.0.7", "GET", "/", proxied); r.status != 401 {
		t.Fatalf("untrusted peer asserting a user: %d", r.status)
	}
}

func TestGateWebSocketThroughReverseProxy(t *testing.T) {
	e := startGate(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := strings.Replace(e.base, "http", "ws", 1) + "/ws"

	// A browser-style client: token in the subprotocol next to the real one,
	// from a foreign origin so local trust cannot be what lets it in.
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		Subprotocols: []string{"bearer." + testToken, "chat.v1"},
		HTTPHeader:   http.Header{"Origin": {"https://app.example"}},
		HTTPClient:   testcaddy.Client(""),
	})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if c.Subprotocol() != "chat.v1" {
		t.Fatalf("negotiated subprotocol %q", c.Subprotocol())
	}
	_, hello, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(hello), "hello token:") || !strings.HasSuffix(string(hello), "leaked=false") {
		t.Fatalf("upstream greeting %q", hello)
	}
	for _, msg := range []string{"ping", strings.Repeat("x", 70000)} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("echo mismatch (%d bytes)", len(got))
		}
	}
	c.Close(websocket.StatusNormalClosure, "")

	// Without a credential the upgrade is refused before reaching upstream.
	_, resp, err = websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		Subprotocols: []string{"chat.v1"},
		HTTPHeader:   http.Header{"Origin": {"https://app.example"}},
		HTTPClient:   testcaddy.Client(""),
	})
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("unauthenticated upgrade: err %v resp %v", err, resp)
	}
}

func TestChallengeListsBearerForDevicesOnly(t *testing.T) {
	up := upstream(t)
	port := testcaddy.FreePort(t)
	testcaddy.Load(t, testcaddy.Global(testcaddy.FreePort(t))+fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		state_dir %s
	}
	reverse_proxy %s
}
`, port, t.TempDir(), strings.TrimPrefix(up.URL, "http://")))
	e := &gateEnv{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	r := e.do(t, "", "GET", "/", remote)
	if r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("a gate with only device pairing: %d, WWW-Authenticate %q", r.status, r.header.Get("WWW-Authenticate"))
	}
}
