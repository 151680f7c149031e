package caddymodule

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
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

// pairEnv is Caddy with the gate (pairing on) in front of a real upstream.
type pairEnv struct {
	base  string // the gateway site
	ui    string // the admin listener (admin UI and API)
	admin int    // Caddy's admin endpoint
	dir   string
	cfg   string
}

// startPairing runs the gate with state in dir and opts inside its block.
func startPairing(t *testing.T, dir, opts string) *pairEnv {
	t.Helper()
	up := upstream(t)
	port, admin, ui := testcaddy.FreePort(t), testcaddy.FreePort(t), testcaddy.FreePort(t)
	cfg := testcaddy.Global(admin) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token %s
		password alice %s
		state_dir %s
		admin_listen 127.0.0.1:%d
		%s
	}
	reverse_proxy %s
}
`, port, testToken, htpasswdHash(t, "alice", testPassword), dir, ui, opts, strings.TrimPrefix(up.URL, "http://"))
	testcaddy.Load(t, cfg)
	return &pairEnv{base: fmt.Sprintf("http://127.0.0.1:%d", port), ui: fmt.Sprintf("http://127.0.0.1:%d", ui), admin: admin, dir: dir, cfg: cfg}
}

// headerTransport adds headers to every request.
type headerTransport struct {
	base http.RoundTripper
	h    map[string]string
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header.Set(k, v)
	}
	return t.base.RoundTrip(r)
}

// remoteClient acts as a client elsewhere: a loopback peer relaying for
// 203.0.113.7 is not local, so nothing it asks is auto-approved.
func remoteClient(from string) *http.Client {
	c := testcaddy.Client(from)
	c.Transport = headerTransport{base: c.Transport, h: remote}
	return c
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	k, err := pairclient.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func session(t *testing.T, e *pairEnv, key ed25519.PrivateKey, c *http.Client) *pairclient.Session {
	t.Helper()
	s, err := pairclient.NewSession(e.base, key, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// adminAPI calls the admin API as c (local when c is the plain client),
// with the CSRF token on writes.
func adminAPI(t *testing.T, e *pairEnv, c *http.Client, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.ui+"/.clawguard/api/"+path, rd)
	if method == "POST" {
		var s pairing.Session
		if st := adminAPI(t, e, c, "GET", "session", nil, &s); st != 200 {
			t.Fatalf("session: %d", st)
		}
		req.Header.Set(pairing.CSRFHeader, s.CSRFToken)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	if resp.StatusCode != 200 {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

type deviceList struct {
	Devices []pairing.DeviceView `json:"devices"`
}

type requestList struct {
	Requests []pairing.Request `json:"requests"`
}

// getAs sends GET path with a bearer token and returns the status and the
// identity the upstream saw.
func getAs(t *testing.T, e *pairEnv, c *http.Client, token, path string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var seen http.Header
	if resp.StatusCode == 200 {
		json.NewDecoder(resp.Body).Decode(&seen)
	}
	return resp.StatusCode, seen
}

func TestPairingLocalAutoApproval(t *testing.T) {
	e := startPairing(t, filepath.Join(t.TempDir(), "state"), "")
	key := newKey(t)
	res, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: e.base, Name: "this laptop", Key: key, HTTPClient: testcaddy.Client("")})
	if err != nil {
		t.Fatalf("local pairing: %v", err)
	}
	if res.RequestID != "" || !strings.HasPrefix(res.Token, "cgd_") || res.DeviceID != pairclient.DeviceID(key) {
		t.Fatalf("local pairing was not auto-approved: %+v", res)
	}

	// The token works from anywhere, as device:<id>, and never reaches the
	// upstream.
	status, seen := getAs(t, e, remoteClient(""), res.Token, "/api")
	if status != 200 || seen.Get("X-Clawguard-Identity") != "device:"+res.DeviceID || seen.Get("X-Clawguard-Device") != res.DeviceID ||
		seen.Get("X-Clawguard-Method") != "device" || seen.Get("Authorization") != "" {
		t.Fatalf("device token: %d, upstream saw %v", status, seen)
	}
	// Also as the WebSocket subprotocol a browser would use.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(e.base, "http", "ws", 1)+"/ws", &websocket.DialOptions{
		Subprotocols: []string{"bearer." + res.Token, "chat.v1"},
		HTTPHeader:   http.Header{"Origin": {"https://app.example"}},
		HTTPClient:   testcaddy.Client(""),
	})
	if err != nil {
		t.Fatalf("WebSocket with the device token: %v", err)
	}
	_, hello, err := c.Read(ctx)
	c.CloseNow()
	if err != nil || string(hello) != "hello device:"+res.DeviceID+" proto=chat.v1 leaked=false" {
		t.Fatalf("upstream greeting %q, %v", hello, err)
	}
	// And with pairclient.Dial (Authorization on the handshake).
	c, _, err = pairclient.Dial(ctx, strings.Replace(e.base, "http", "ws", 1)+"/ws", res.Token, nil, &websocket.DialOptions{HTTPClient: remoteClient("")})
	if err != nil {
		t.Fatalf("pairclient.Dial: %v", err)
	}
	_, hello, _ = c.Read(ctx)
	c.CloseNow()
	if !strings.HasPrefix(string(hello), "hello device:") {
		t.Fatalf("pairclient.Dial greeting %q", hello)
	}

	// The admin API lists it; the file has only the token's hash.
	var list deviceList
	if st := adminAPI(t, e, testcaddy.Client(""), "GET", "devices", nil, &list); st != 200 || len(list.Devices) != 1 {
		t.Fatalf("devices: %d %+v", st, list)
	}
	d := list.Devices[0]
	if d.Status != pairing.DeviceActive || d.Name != "this laptop" || d.ApprovedBy != "auto:local" || d.TokenHash != "" {
		t.Fatalf("listed device %+v", d)
	}
	raw, err := os.ReadFile(filepath.Join(e.dir, wire.FileDevices))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(res.Token)) || bytes.Contains(raw, []byte(strings.TrimPrefix(res.Token, "cgd_"))) {
		t.Fatal("the device token is stored in plaintext")
	}
	for path, want := range map[string]os.FileMode{e.dir: 0o700, filepath.Join(e.dir, wire.FileDevices): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: mode %v, want %o (%v)", path, fi.Mode().Perm(), want, err)
		}
	}

	// A made-up device token is refused like any wrong credential.
	if st, _ := getAs(t, e, remoteClient(""), "cgd_"+strings.Repeat("A", 43), "/api"); st != 401 {
		t.Fatalf("made-up device token: %d", st)
	}
}

// pendingRequest submits a pairing request from a remote client.
func pendingRequest(t *testing.T, e *pairEnv, key ed25519.PrivateKey, name string) (*pairclient.Session, string) {
	t.Helper()
	s := session(t, e, key, remoteClient(""))
	resp, err := s.Request(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != pairing.StatusPending || resp.RequestID == "" || resp.DeviceToken != "" {
		t.Fatalf("remote request was not queued: %+v", resp)
	}
	return s, resp.RequestID
}

func TestPairingRemoteApproveOnce(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	key := newKey(t)
	s, id := pendingRequest(t, e, key, "phone")

	// Pending: polls say so, the token does not exist yet.
	if resp, err := s.Poll(context.Background(), id); err != nil || resp.Status != pairing.StatusPending || resp.DeviceToken != "" {
		t.Fatalf("poll while pending: %+v %v", resp, err)
	}
	var reqs requestList
	if adminAPI(t, e, testcaddy.Client(""), "GET", "pairing", nil, &reqs); len(reqs.Requests) != 1 || reqs.Requests[0].ID != id ||
		reqs.Requests[0].ClientIP != "127.0.0.1" || reqs.Requests[0].Name != "phone" {
		t.Fatalf("pending list %+v", reqs)
	}
	var dec pairing.Decision
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "pairing/"+id+"/approve", nil, &dec); st != 200 || dec.DeviceID != pairclient.DeviceID(key) {
		t.Fatalf("approve: %d %+v", st, dec)
	}
	// Approving twice is a conflict, not a second token.
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "pairing/"+id+"/approve", nil, nil); st != 409 {
		t.Fatalf("second approve: %d, want 409", st)
	}
	resp, err := s.Poll(context.Background(), id)
	if err != nil || resp.Status != pairing.StatusApproved || !strings.HasPrefix(resp.DeviceToken, "cgd_") {
		t.Fatalf("poll after approval: %+v %v", resp, err)
	}
	// The token is handed out once.
	again, err := s.Poll(context.Background(), id)
	if err == nil || pairclient.CodeOf(err) != pairing.CodeUnknownRequest || again.DeviceToken != "" {
		t.Fatalf("second poll after approval: %+v %v", again, err)
	}
	if st, seen := getAs(t, e, remoteClient(""), resp.DeviceToken, "/"); st != 200 || seen.Get("X-Clawguard-Device") != dec.DeviceID {
		t.Fatalf("approved token: %d %v", st, seen)
	}
	var list deviceList
	adminAPI(t, e, testcaddy.Client(""), "GET", "devices", nil, &list)
	if len(list.Devices) != 1 || list.Devices[0].ApprovedBy != "local" || list.Devices[0].Status != pairing.DeviceActive {
		t.Fatalf("devices after approval %+v", list)
	}
}

func TestPairingRejectAndExpiry(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	s, id := pendingRequest(t, e, newKey(t), "unknown")
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "pairing/"+id+"/reject", nil, nil); st != 200 {
		t.Fatalf("reject: %d", st)
	}
	if resp, err := s.Poll(context.Background(), id); err != nil || resp.Status != pairing.StatusRejected || resp.DeviceToken != "" {
		t.Fatalf("poll after reject: %+v %v", resp, err)
	}
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "pairing/"+id+"/approve", nil, nil); st != 409 {
		t.Fatalf("approving a rejected request: %d", st)
	}

	// Expiry, with the shortest TTL (a reload: the store and its requests
	// stay, the policy changes).
	if err := testcaddy.LoadErr(strings.Replace(e.cfg, "state_dir", "pairing {\n pending_ttl 1s\n }\n state_dir", 1)); err != nil {
		t.Fatal(err)
	}
	s2, id2 := pendingRequest(t, e, newKey(t), "slow")
	time.Sleep(1100 * time.Millisecond)
	if _, err := s2.Poll(context.Background(), id2); pairclient.CodeOf(err) != pairing.CodeUnknownRequest {
		t.Fatalf("poll after expiry: %v, want 404 %s", err, pairing.CodeUnknownRequest)
	}
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "pairing/"+id2+"/approve", nil, nil); st != 404 {
		t.Fatalf("approving an expired request: %d, want 404", st)
	}
	var reqs requestList
	if adminAPI(t, e, testcaddy.Client(""), "GET", "pairing", nil, &reqs); len(reqs.Requests) != 0 {
		t.Fatalf("expired requests still listed: %+v", reqs)
	}
}

// rawPost sends a pairing message as given (a string as is, else as JSON).
func rawPost(t *testing.T, e *pairEnv, c *http.Client, endpoint string, body any) (int, string) {
	t.Helper()
	s, ok := body.(string)
	if !ok {
		b, _ := json.Marshal(body)
		s = string(b)
	}
	return call(t, c, "POST", e.base+"/.clawguard/pair/"+endpoint, map[string]string{"Content-Type": "application/json"}, s)
}

func challenge(t *testing.T, e *pairEnv, c *http.Client) string {
	t.Helper()
	var ch pairing.Challenge
	resp, err := c.Post(e.base+"/.clawguard/pair/challenge", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&ch) != nil {
		t.Fatalf("challenge: %d", resp.StatusCode)
	}
	return ch.Nonce
}

func TestPairingRefusesForgeriesAndCountsThem(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	c := remoteClient("127.0.0.21")
	key, other := newKey(t), newKey(t)
	now := time.Now()

	good := func() *pairing.PairRequest { return pairing.NewPairRequest(key, "tablet", challenge(t, e, c), now) }
	wrongSig := good()
	wrongSig.Signature = pairing.NewPairRequest(other, "tablet", wrongSig.Nonce, now).Signature
	mismatch := good()
	mismatch.DeviceID = pairclient.DeviceID(other)
	stale := pairing.NewPairRequest(key, "tablet", challenge(t, e, c), now.Add(-121*time.Second))
	future := pairing.NewPairRequest(key, "tablet", challenge(t, e, c), now.Add(125*time.Second))
	unknownNonce := pairing.NewPairRequest(key, "tablet", strings.Repeat("A", 43), now)
	renamed := good()
	renamed.Name = "admin's laptop" // the signature covers the name

	cases := []struct {
		name string
		body any
		code string
	}{
		{"wrong signature", wrongSig, pairing.CodeBadSignature},
		{"device id of another key", mismatch, pairing.CodeIDMismatch},
		{"stale signed_at", stale, pairing.CodeStaleSignature},
		{"signed_at in the future", future, pairing.CodeStaleSignature},
		{"unknown nonce", unknownNonce, pairing.CodeInvalidNonce},
		{"name changed after signing", renamed, pairing.CodeBadSignature},
		{"malformed JSON", `{"device_id":`, pairing.CodeBadRequest},
		{"unknown field", `{"device_id":"x","evil":1}`, pairing.CodeBadRequest},
	}
	for _, tc := range cases {
		if st, code := rawPost(t, e, c, "request", tc.body); code != tc.code || st/100 != 4 {
			t.Errorf("%s: %d %s, want %s", tc.name, st, code, tc.code)
		}
	}
	// A nonce is single-use: the same (valid) message twice is a replay.
	ok := good()
	if st, code := rawPost(t, e, c, "request", ok); st != 202 {
		t.Fatalf("valid request: %d %s", st, code)
	}
	if st, code := rawPost(t, e, c, "request", ok); st != 401 || code != pairing.CodeInvalidNonce {
		t.Fatalf("replayed request: %d %s, want 401 %s", st, code, pairing.CodeInvalidNonce)
	}
	// The forged messages did not burn the nonce they named: the device can
	// still use it (wrongSig's nonce was only ever presented with a bad
	// signature).
	legit := pairing.NewPairRequest(key, "tablet", wrongSig.Nonce, now)
	if st, code := rawPost(t, e, c, "request", legit); st != 202 {
		t.Fatalf("nonce burnt by a forgery: %d %s", st, code)
	}
	// Seven failed proofs so far (6 cases + the replay); malformed bodies
	// guess nothing and do not count, however many.
	for range 10 {
		rawPost(t, e, c, "request", `{}`)
	}
	if st, _ := rawPost(t, e, c, "challenge", nil); st != 200 {
		t.Fatalf("after malformed bodies: %d, want 200", st)
	}
	// Three more failed proofs lock the client's pairing out: then even
	// valid messages get 429.
	for range 3 {
		rawPost(t, e, c, "request", wrongSig)
	}
	if st, _ := rawPost(t, e, c, "challenge", nil); st != 429 {
		t.Fatalf("after 10 failed pairing proofs: %d, want 429", st)
	}
	// Only its pairing: the same client's token still works.
	if st, _ := getAs(t, e, c, testToken, "/"); st != 200 {
		t.Fatalf("token after a pairing lockout: %d", st)
	}
	// Another client is unaffected.
	if st, _ := rawPost(t, e, remoteClient("127.0.0.22"), "challenge", nil); st != 200 {
		t.Fatalf("other client: %d", st)
	}
}

func TestPairingPollRefusals(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	key, other := newKey(t), newKey(t)
	_, id := pendingRequest(t, e, key, "watch")
	c := remoteClient("")
	now := time.Now()
	byOther := pairing.NewPollRequest(other, id, challenge(t, e, c), now)
	forged := pairing.NewPollRequest(other, id, challenge(t, e, c), now)
	forged.DeviceID = pairclient.DeviceID(key) // claims to be the device, signed by another key
	stale := pairing.NewPollRequest(key, id, challenge(t, e, c), now.Add(-3*time.Minute))
	for name, tc := range map[string]struct {
		body *pairing.PollRequest
		code string
	}{
		"another device's poll": {byOther, pairing.CodeIDMismatch},
		"forged signature":      {forged, pairing.CodeBadSignature},
		"stale":                 {stale, pairing.CodeStaleSignature},
	} {
		if st, code := rawPost(t, e, c, "poll", tc.body); st != 401 || code != tc.code {
			t.Errorf("%s: %d %s, want 401 %s", name, st, code, tc.code)
		}
	}
	// None of them got the token: approve, and the device still collects it.
	adminAPI(t, e, testcaddy.Client(""), "POST", "pairing/"+id+"/approve", nil, nil)
	if resp, err := session(t, e, key, c).Poll(context.Background(), id); err != nil || resp.DeviceToken == "" {
		t.Fatalf("device's poll after the forgeries: %+v %v", resp, err)
	}
}

func TestPairingReRequestSupersedes(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	key := newKey(t)
	_, first := pendingRequest(t, e, key, "old name")
	s, second := pendingRequest(t, e, key, "new name")
	var reqs requestList
	adminAPI(t, e, testcaddy.Client(""), "GET", "pairing", nil, &reqs)
	if len(reqs.Requests) != 1 || reqs.Requests[0].ID != second || reqs.Requests[0].Name != "new name" {
		t.Fatalf("after a re-request: %+v", reqs)
	}
	if _, err := s.Poll(context.Background(), first); pairclient.CodeOf(err) != pairing.CodeUnknownRequest {
		t.Fatalf("superseded request still polls: %v", err)
	}
}

func TestDeviceRevocationWithinOneSecond(t *testing.T) {
	e := startPairing(t, t.TempDir(), "")
	pairLocal := func(name string) *pairclient.Result {
		res, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: e.base, Name: name, Key: newKey(t), HTTPClient: testcaddy.Client("")})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	waitRefused := func(token string) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < 3*time.Second {
			if st, _ := getAs(t, e, remoteClient(""), token, "/"); st == 401 {
				return time.Since(start)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("revoked token still accepted after 3s")
		return 0
	}

	// Through the admin API (this process).
	a := pairLocal("a")
	if st, _ := getAs(t, e, remoteClient(""), a.Token, "/"); st != 200 {
		t.Fatalf("token before revocation: %d", st)
	}
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "devices/"+a.DeviceID+"/revoke", nil, nil); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	if d := waitRefused(a.Token); d > 50*time.Millisecond {
		t.Fatalf("revocation through the API took %s", d)
	}

	// By another process writing the store file.
	b := pairLocal("b")
	if st, _ := getAs(t, e, remoteClient(""), b.Token, "/"); st != 200 {
		t.Fatalf("token before revocation: %d", st)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRevokeProcess$")
	cmd.Env = append(os.Environ(), "PAIRING_HELPER_DIR="+e.dir, "PAIRING_HELPER_DEVICE="+b.DeviceID)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("revoking process: %v\n%s", err, out)
	}
	var wroteAt int64
	if _, err := fmt.Sscanf(string(out[bytes.Index(out, []byte("revoked-at ")):]), "revoked-at %d", &wroteAt); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	waitRefused(b.Token)
	d := time.Since(time.Unix(0, wroteAt))
	t.Logf("revocation written by another process took effect %s after the write", d)
	if d > time.Second {
		t.Fatalf("revocation by another process took %s, want < 1s", d)
	}
	var list deviceList
	adminAPI(t, e, testcaddy.Client(""), "GET", "devices", nil, &list)
	for _, dv := range list.Devices {
		if dv.Status != pairing.DeviceRevoked {
			t.Fatalf("device %s is %s after revocation", dv.Name, dv.Status)
		}
	}
}

// TestHelperRevokeProcess is the other process of
// TestDeviceRevocationWithinOneSecond: it opens the store file itself, as a
// second gate or a tool on the same state dir would, and revokes a device.
func TestHelperRevokeProcess(t *testing.T) {
	dir := os.Getenv("PAIRING_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := pairing.Open(dir, pairing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Revoke(os.Getenv("PAIRING_HELPER_DEVICE"), "test:other-process"); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("revoked-at %d\n", time.Now().UnixNano())
}

func TestPairingStateSurvivesRestartAndReload(t *testing.T) {
	dir := t.TempDir()
	e := startPairing(t, dir, "")
	res, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: e.base, Name: "kept", Key: newKey(t), HTTPClient: testcaddy.Client("")})
	if err != nil {
		t.Fatal(err)
	}
	pendingKey := newKey(t)
	_, id := pendingRequest(t, e, pendingKey, "waiting")
	nonce := challenge(t, e, remoteClient(""))

	// A reload (new config, same state dir) keeps the store, nonces included.
	if err := testcaddy.LoadErr(strings.Replace(e.cfg, "state_dir", "pairing {\n pending_ttl 10m\n }\n state_dir", 1)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if st, code := rawPost(t, e, remoteClient(""), "request", pairing.NewPairRequest(newKey(t), "after reload", nonce, time.Now())); st != 202 {
		t.Fatalf("nonce from before the reload: %d %s", st, code)
	}

	// A full stop and start of Caddy keeps devices and pending requests.
	testcaddy.Stop()
	e = startPairing(t, dir, "")
	if st, seen := getAs(t, e, remoteClient(""), res.Token, "/"); st != 200 || seen.Get("X-Clawguard-Device") != res.DeviceID {
		t.Fatalf("token after restart: %d", st)
	}
	var reqs requestList
	adminAPI(t, e, testcaddy.Client(""), "GET", "pairing", nil, &reqs)
	found := false
	for _, r := range reqs.Requests {
		found = found || r.ID == id
	}
	if !found {
		t.Fatalf("pending request lost in the restart: %+v", reqs)
	}
	adminAPI(t, e, testcaddy.Client(""), "POST", "pairing/"+id+"/approve", nil, nil)
	if resp, err := session(t, e, pendingKey, remoteClient("")).Poll(context.Background(), id); err != nil || resp.DeviceToken == "" {
		t.Fatalf("poll after restart: %+v %v", resp, err)
	}
}
