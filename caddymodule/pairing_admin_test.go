package caddymodule

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairclient"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/wire"
)

// call sends one request with headers and returns status and error code.
func call(t *testing.T, c *http.Client, method, url string, h map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb wire.ErrorBody
	json.Unmarshal(data, &eb)
	return resp.StatusCode, eb.Code
}

func TestAdminAPIAccess(t *testing.T) {
	e := startPairing(t, t.TempDir(), "admins user:alice")
	_, id := pendingRequest(t, e, newKey(t), "victim target")
	api := e.ui + "/.clawguard/api/"
	aliceAuth := basic("alice", testPassword)

	// Who may read: local and listed admins; nobody else.
	for _, c := range []struct {
		name   string
		client *http.Client
		h      map[string]string
		status int
	}{
		{"local", testcaddy.Client(""), nil, 200},
		{"remote without credentials", remoteClient(""), nil, 401},
		{"remote with the shared token (not an admin)", remoteClient(""), map[string]string{"Authorization": "Bearer " + testToken}, 403},
		{"remote admin user:alice", remoteClient(""), map[string]string{"Authorization": aliceAuth}, 200},
		{"local browser page of another origin", testcaddy.Client(""), map[string]string{"Origin": "https://evil.example"}, 401},
		{"DNS rebinding", testcaddy.Client(""), map[string]string{"Host": "evil.example", "Origin": "http://evil.example"}, 401},
		{"admin from a cross-site page", remoteClient(""), map[string]string{"Authorization": aliceAuth, "Origin": "https://evil.example"}, 403},
		{"admin with Sec-Fetch-Site cross-site", remoteClient(""), map[string]string{"Authorization": aliceAuth, "Sec-Fetch-Site": "cross-site"}, 403},
	} {
		req, _ := http.NewRequest("GET", api+"pairing", nil)
		for k, v := range c.h {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.status)
		}
	}

	// Writes need the CSRF token of the caller's own session.
	approve := api + "pairing/" + id + "/approve"
	if st, code := call(t, testcaddy.Client(""), "POST", approve, nil, ""); st != 403 || code != "csrf" {
		t.Fatalf("POST without CSRF token: %d %s", st, code)
	}
	if st, code := call(t, testcaddy.Client(""), "POST", approve, map[string]string{pairing.CSRFHeader: "v1.9999999999.AAAA"}, ""); st != 403 || code != "csrf" {
		t.Fatalf("POST with a forged CSRF token: %d %s", st, code)
	}
	var aliceSession pairing.Session
	req, _ := http.NewRequest("GET", api+"session", nil)
	req.Header.Set("Authorization", aliceAuth)
	resp, err := remoteClient("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&aliceSession)
	resp.Body.Close()
	if aliceSession.Identity != "user:alice" || aliceSession.CSRFToken == "" {
		t.Fatalf("alice's session %+v", aliceSession)
	}
	// Alice's token is not the local session's.
	if st, code := call(t, testcaddy.Client(""), "POST", approve, map[string]string{pairing.CSRFHeader: aliceSession.CSRFToken}, ""); st != 403 || code != "csrf" {
		t.Fatalf("POST with another identity's CSRF token: %d %s", st, code)
	}
	// A cross-site form post from alice's browser (Basic credentials cached)
	// with her token is still refused for its origin.
	if st, code := call(t, remoteClient(""), "POST", approve, map[string]string{"Authorization": aliceAuth, pairing.CSRFHeader: aliceSession.CSRFToken,
		"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"}, "a=b"); st != 403 || code != "cross_site" {
		t.Fatalf("cross-site POST by an admin: %d %s", st, code)
	}
	var reqs requestList
	if adminAPI(t, e, testcaddy.Client(""), "GET", "pairing", nil, &reqs); len(reqs.Requests) != 1 {
		t.Fatalf("a refused write changed the state: %+v", reqs)
	}
	if st, _ := call(t, remoteClient(""), "POST", approve, map[string]string{"Authorization": aliceAuth, pairing.CSRFHeader: aliceSession.CSRFToken}, ""); st != 200 {
		t.Fatalf("alice's approval: %d", st)
	}
	var list deviceList
	adminAPI(t, e, testcaddy.Client(""), "GET", "devices", nil, &list)
	if len(list.Devices) != 1 || list.Devices[0].ApprovedBy != "user:alice" {
		t.Fatalf("approved_by: %+v", list.Devices)
	}

	// Rename: validated.
	dev := list.Devices[0].ID
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "devices/"+dev+"/rename", map[string]string{"name": "bad\u202ename"}, nil); st != 400 {
		t.Fatalf("rename to a bidi-override name: %d", st)
	}
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "devices/"+dev+"/rename", map[string]string{"name": "kitchen tablet"}, nil); st != 200 {
		t.Fatalf("rename: %d", st)
	}
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "devices/"+strings.Repeat("0", 64)+"/revoke", nil, nil); st != 404 {
		t.Fatalf("revoke unknown device: %d", st)
	}
	if st, _ := call(t, testcaddy.Client(""), "GET", approve, nil, ""); st != 405 {
		t.Fatalf("GET on a write endpoint: %d", st)
	}
}

func TestClawguardPathsNeverReachUpstream(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	for _, p := range []string{"/.clawguard/", "/.clawguard/nope", "/.clawguard/pair/../../api", "/.clawguard/pair/challenge"} {
		// GET on the open paths: 404 or 405 from the gate, never the echo
		// upstream's 200.
		if st, _ := call(t, testcaddy.Client(""), "GET", e.base+p, map[string]string{"Authorization": "Bearer " + testToken}, ""); st == 200 {
			t.Errorf("GET %s reached the upstream", p)
		}
	}
	// The UI carries the strict CSP.
	resp, err := testcaddy.Client("").Get(e.ui + "/.clawguard/ui/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "app.js") ||
		!strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("UI: %d CSP %q", resp.StatusCode, csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("UI headers %v", resp.Header)
	}
}

func TestPairingRefusesCrossSitePages(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	for _, h := range []map[string]string{{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}} {
		if st, code := call(t, testcaddy.Client(""), "POST", e.base+"/.clawguard/pair/challenge", h, ""); st != 403 || code != "cross_site" {
			t.Errorf("challenge with %v: %d %s", h, st, code)
		}
	}
	// Programs (no Origin) and same-origin pages are served.
	if st, _ := call(t, testcaddy.Client(""), "POST", e.base+"/.clawguard/pair/challenge", map[string]string{"Origin": e.base}, ""); st != 200 {
		t.Errorf("same-origin challenge: %d", st)
	}
}

func TestPairingOff(t *testing.T) {
	dir := t.TempDir()
	e := startPairing(t, dir, "")
	res, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: e.base, Name: "n", Key: newKey(t), HTTPClient: testcaddy.Client("")})
	if err != nil {
		t.Fatal(err)
	}
	if err := testcaddy.LoadErr(strings.Replace(e.cfg, "state_dir", "pairing off\n state_dir", 1)); err != nil {
		t.Fatal(err)
	}
	if st, _ := call(t, testcaddy.Client(""), "POST", e.base+"/.clawguard/pair/challenge", nil, ""); st != 404 {
		t.Fatalf("challenge with pairing off: %d", st)
	}
	if st, _ := call(t, testcaddy.Client(""), "GET", e.base+"/.clawguard/api/devices", nil, ""); st != 404 {
		t.Fatalf("admin API with pairing off: %d", st)
	}
	if _, err := http.Get(e.ui + "/.clawguard/api/devices"); err == nil {
		t.Fatal("admin listener open with pairing off (nothing to administer)")
	}
	if st, _ := getAs(t, e, remoteClient(""), res.Token, "/"); st != 401 {
		t.Fatalf("device token with pairing off: %d", st)
	}
}

func TestRequireDeviceSignature(t *testing.T) {
	e := startPairing(t, t.TempDir(), "pairing {\n require_device_signature\n }")
	key := newKey(t)
	res, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: e.base, Name: "signer", Key: key, HTTPClient: testcaddy.Client("")})
	if err != nil {
		t.Fatal(err)
	}
	// The token alone (as stolen) is refused.
	if st, _ := getAs(t, e, remoteClient(""), res.Token, "/"); st != 401 {
		t.Fatalf("token without signature: %d", st)
	}
	signed := &http.Client{Transport: &pairclient.Transport{Base: remoteClient("").Transport, Token: res.Token, Key: key}}
	resp, err := signed.Post(e.base+"/api", "application/json", strings.NewReader(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	var seen http.Header
	json.NewDecoder(resp.Body).Decode(&seen)
	resp.Body.Close()
	if resp.StatusCode != 200 || seen.Get("X-Clawguard-Device") != res.DeviceID {
		t.Fatalf("signed request: %d %v", resp.StatusCode, seen)
	}
	// Signed by another key, or replayed, is refused.
	other := &http.Client{Transport: &pairclient.Transport{Base: remoteClient("").Transport, Token: res.Token, Key: newKey(t)}}
	if st, _ := getAs(t, e, other, "", "/"); st != 401 {
		t.Fatalf("token signed by another key: %d", st)
	}
	capture := &captureTransport{base: &pairclient.Transport{Base: remoteClient("").Transport, Token: res.Token, Key: key}}
	if st, _ := getAs(t, e, &http.Client{Transport: capture}, "", "/"); st != 200 {
		t.Fatalf("signed GET: %d", st)
	}
	replay, _ := http.NewRequest("GET", e.base+"/", nil)
	replay.Header = capture.last.Clone()
	if resp, err := remoteClient("").Do(replay); err != nil || resp.StatusCode != 401 {
		t.Fatalf("replayed signed request: %v %v", resp, err)
	}
	// WebSocket handshakes are signed the same way.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := pairclient.Dial(ctx, strings.Replace(e.base, "http", "ws", 1)+"/ws", res.Token, key, &websocket.DialOptions{HTTPClient: remoteClient("")})
	if err != nil {
		t.Fatalf("signed WebSocket: %v", err)
	}
	c.CloseNow()
}

// captureTransport remembers the headers of the last request sent.
type captureTransport struct {
	base http.RoundTripper
	last http.Header
}

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if resp != nil {
		c.last = resp.Request.Header
	}
	return resp, err
}

func TestPairingMetrics(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	before, _ := scrape(t, e.admin)
	if _, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: e.base, Name: "m", Key: newKey(t), HTTPClient: testcaddy.Client("")}); err != nil {
		t.Fatal(err)
	}
	_, id := pendingRequest(t, e, newKey(t), "p")
	adminAPI(t, e, testcaddy.Client(""), "POST", "pairing/"+id+"/reject", nil, nil)
	rawPost(t, e, remoteClient(""), "request", `{}`)
	after, raw := scrape(t, e.admin)
	for result, want := range map[string]float64{"auto_approved": 1, "pending": 1, "rejected": 1, "invalid": 1, "approved": 0} {
		l := map[string]string{"result": result}
		if got := counter(after, "clawguard_pairing_requests_total", l) - counter(before, "clawguard_pairing_requests_total", l); got != want {
			t.Errorf("pairing_requests_total{result=%q} moved by %v, want %v", result, got, want)
		}
	}
	if f := after["clawguard_devices_paired"]; f == nil || f.Metric[0].GetGauge().GetValue() != 1 {
		t.Fatalf("devices_paired: %v", f)
	}
	if !strings.Contains(string(filterFamilies(raw, "clawguard_")), "clawguard_devices_paired 1") {
		t.Fatal("devices_paired not in the text exposition")
	}
}

func TestEventsFeedAndReload(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(e.ui, "http", "ws", 1)+"/.clawguard/api/events", &websocket.DialOptions{HTTPClient: testcaddy.Client("")})
	if err != nil {
		t.Fatalf("events feed: %v", err)
	}
	defer c.CloseNow()
	read := func() pairing.Event {
		t.Helper()
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("reading the feed: %v", err)
		}
		var ev pairing.Event
		json.Unmarshal(b, &ev)
		return ev
	}
	first := read()
	pendingRequest(t, e, newKey(t), "news")
	if next := read(); next.Type != "changed" || next.Version <= first.Version {
		t.Fatalf("after a new request: %+v (first %+v)", next, first)
	}
	// Not for everyone: a remote client without credentials is refused.
	if _, resp, err := websocket.Dial(ctx, strings.Replace(e.ui, "http", "ws", 1)+"/.clawguard/api/events", &websocket.DialOptions{HTTPClient: remoteClient("")}); err == nil || resp.StatusCode != 401 {
		t.Fatalf("remote feed: %v", err)
	}
	// A reload is not held up by the open feed, and ends it.
	start := time.Now()
	if err := testcaddy.LoadErr(e.cfg + "\n"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("reload took %s with an open event feed", d)
	}
	if _, _, err := c.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("the feed outlived its config: %v", err)
	}
}

func TestDamagedStoreRefusesConfig(t *testing.T) {
	dir := t.TempDir()
	e := startPairing(t, dir, "")
	if err := os.WriteFile(filepath.Join(dir, wire.FileDevices), []byte(`{"version":1,"devices":[{"device_id":"x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	testcaddy.Stop()
	err := testcaddy.LoadErr(e.cfg)
	if err == nil || !strings.Contains(err.Error(), wire.FileDevices) || !strings.Contains(err.Error(), "devices[0]") {
		t.Fatalf("config with a damaged store: %v", err)
	}
}
