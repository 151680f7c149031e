package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairclient"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/vault"
)

const opsToken = "ops-token-0123456789abcdefghij"

// startGate runs real Caddy with the clawguard gate in front of an upstream
// that echoes the identity it sees, and returns the gateway's and the admin
// listener's base URLs. opts go inside the clawguard block.
func startGate(t *testing.T, opts string) (base, admin string) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("X-Clawguard-Identity"))
	}))
	t.Cleanup(up.Close)
	t.Setenv("CG_OPS_TOKEN", opsToken)
	port, ui := testcaddy.FreePort(t), testcaddy.FreePort(t)
	testcaddy.Load(t, testcaddy.Global(testcaddy.FreePort(t))+fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token {env.CG_OPS_TOKEN}
		state_dir %s
		admin_listen 127.0.0.1:%d
		%s
	}
	reverse_proxy %s
}
`, port, filepath.Join(t.TempDir(), "gate"), ui, opts, strings.TrimPrefix(up.URL, "http://")))
	return fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", ui)
}

// remoteSession pairs as a device elsewhere (a relayed request is never
// local).
func remoteSession(t *testing.T, base string) (*pairclient.Session, string) {
	t.Helper()
	key, _ := pairclient.GenerateKey()
	client := &http.Client{Transport: relayed{}}
	s, err := pairclient.NewSession(base, key, client)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Request(context.Background(), "remote phone")
	if err != nil || resp.Status != pairing.StatusPending {
		t.Fatalf("remote request: %+v %v", resp, err)
	}
	return s, resp.RequestID
}

type relayed struct{}

func (relayed) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", "198.51.100.4")
	return http.DefaultTransport.RoundTrip(r)
}

func identityWith(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-For", "198.51.100.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDevicesCLIApproveRenameRevoke(t *testing.T) {
	base, admin := startGate(t, "")
	s, id := remoteSession(t, base)

	r := runCLI(nil, nil, "devices", "list", "--json", "--admin-url", admin)
	wantCode(t, r, 0)
	var listing deviceListing
	if err := json.Unmarshal([]byte(r.stdout), &listing); err != nil || len(listing.Requests) != 1 || listing.Requests[0].ID != id {
		t.Fatalf("devices list --json: %v %s", err, r.stdout)
	}
	r = runCLI(nil, nil, "devices", "list", "--admin-url", admin)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "remote phone") || !strings.Contains(r.stdout, "No device is paired") {
		t.Fatalf("devices list:\n%s", r.stdout)
	}

	r = runCLI(nil, nil, "devices", "approve", id, "--admin-url", admin)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "approved "+id) {
		t.Fatalf("approve output %q", r.stdout)
	}
	resp, err := s.Poll(context.Background(), id)
	if err != nil || resp.Status != pairing.StatusApproved || resp.DeviceToken == "" {
		t.Fatalf("poll after CLI approval: %+v %v", resp, err)
	}
	dev := resp.DeviceID
	if st, who := identityWith(t, base, resp.DeviceToken); st != 200 || who != "device:"+dev {
		t.Fatalf("token after approval: %d %q", st, who)
	}

	r = runCLI(nil, nil, "devices", "rename", dev, "work phone", "--admin-url", admin, "--json")
	wantCode(t, r, 0)
	var d pairing.Decision
	if json.Unmarshal([]byte(r.stdout), &d) != nil || d.Name != "work phone" {
		t.Fatalf("rename --json: %s", r.stdout)
	}
	r = runCLI(nil, nil, "devices", "revoke", dev, "--admin-url", admin)
	wantCode(t, r, 0)
	start := time.Now()
	for {
		if st, _ := identityWith(t, base, resp.DeviceToken); st == 401 {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatal("token still accepted 1s after clawguard devices revoke")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r = runCLI(nil, nil, "devices", "list", "--admin-url", admin)
	if !regexp.MustCompile(dev + `\s+work phone\s+revoked`).MatchString(r.stdout) {
		t.Fatalf("list after revoke:\n%s", r.stdout)
	}
}

func TestDevicesCLIReject(t *testing.T) {
	base, admin := startGate(t, "")
	s, id := remoteSession(t, base)
	wantCode(t, runCLI(nil, nil, "devices", "reject", id, "--admin-url", admin), 0)
	if resp, err := s.Poll(context.Background(), id); err != nil || resp.Status != pairing.StatusRejected {
		t.Fatalf("poll after CLI reject: %+v %v", resp, err)
	}
	// Deciding again is refused with the gate's reason.
	wantCode(t, runCLI(nil, nil, "devices", "approve", id, "--admin-url", admin), 1, "already_decided")
}

func TestDevicesCLIAdminToken(t *testing.T) {
	// Not an admin: the token authenticates, but the API refuses it.
	_, admin := startGate(t, "")
	t.Setenv("MY_ADMIN", opsToken)
	wantCode(t, runCLI(nil, nil, "devices", "list", "--admin-url", admin, "--token-env", "MY_ADMIN"), 1, "403 forbidden", "admins")

	base, admin := startGate(t, "admins token:CG_OPS_TOKEN")
	_, id := remoteSession(t, base)
	wantCode(t, runCLI(nil, nil, "devices", "approve", id, "--admin-url", admin, "--token-env", "MY_ADMIN"), 0)
	r := runCLI(nil, nil, "devices", "list", "--json", "--admin-url", admin, "--token-env", "MY_ADMIN")
	var listing deviceListing
	json.Unmarshal([]byte(r.stdout), &listing)
	if len(listing.Devices) != 1 || listing.Devices[0].ApprovedBy != "token:CG_OPS_TOKEN" {
		t.Fatalf("approved_by with an admin token: %s", r.stdout)
	}
	// From the vault too.
	dir := t.TempDir()
	t.Setenv(vault.PassphraseEnv, "devices cli test")
	v, _ := vault.Open(dir)
	if err := v.Set("ops_token", []byte(opsToken+"\n")); err != nil {
		t.Fatal(err)
	}
	wantCode(t, runCLI(nil, nil, "devices", "list", "--admin-url", admin, "--token-vault", "ops_token", "--state-dir", dir), 0)
	wantCode(t, runCLI(nil, nil, "devices", "list", "--admin-url", admin, "--token-env", "UNSET_VAR_XYZ"), 1, "UNSET_VAR_XYZ")
}

// TestDevicesCLIPointedAtTheGatewaySite: the gateway's site has no admin
// API; the CLI says where it is.
func TestDevicesCLIPointedAtTheGatewaySite(t *testing.T) {
	base, _ := startGate(t, "")
	wantCode(t, runCLI(nil, nil, "devices", "list", "--admin-url", base), 1, "404", "admin listener", "127.0.0.1:18788")
}

func TestDevicesCLIUsageErrors(t *testing.T) {
	wantCode(t, runCLI(nil, nil, "devices"), 2, "missing subcommand")
	wantCode(t, runCLI(nil, nil, "devices", "approve"), 2, "takes 1 argument")
	wantCode(t, runCLI(nil, nil, "devices", "approve", "pr_x/../../devices"), 2, "not a request or device id")
	wantCode(t, runCLI(nil, nil, "devices", "rename", "abc", "bad\x07name"), 2, "control character")
	wantCode(t, runCLI(nil, nil, "devices", "list", "--admin-url", "ftp://x"), 2, "http://")
	port := testcaddy.FreePort(t)
	// --gateway is the flag's former name.
	wantCode(t, runCLI(nil, nil, "devices", "list", "--gateway", fmt.Sprintf("http://127.0.0.1:%d", port)), 1, "cannot reach the admin listener")
	if r := runCLI(nil, nil, "devices", "--help"); r.code != 0 || !strings.Contains(r.stdout, "approve REQUEST_ID") {
		t.Fatalf("devices --help: %d %s", r.code, r.stdout)
	}
}

func TestPairCLILocalAndStatus(t *testing.T) {
	base, admin := startGate(t, "")
	dir := filepath.Join(t.TempDir(), "device")
	t.Setenv(vault.PassphraseEnv, "pair cli test")
	r := runCLI(nil, nil, "pair", "--gateway", base, "--name", "cli box", "--state-dir", dir, "--json")
	wantCode(t, r, 0)
	var st pairStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.DeviceID == "" || st.Secrets != "vault" || st.RequestID != "" {
		t.Fatalf("pair --json: %v %s", err, r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, "cgd_") {
		t.Fatal("pair printed the device token")
	}
	v, _ := vault.Open(dir)
	tok, err := v.Get(tokenEntry)
	if err != nil || !strings.HasPrefix(string(tok), "cgd_") {
		t.Fatalf("token in the vault: %v", err)
	}
	r = runCLI(nil, nil, "pair", "status", "--check", "--json", "--state-dir", dir)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, `"token_accepted": true`) {
		t.Fatalf("pair status --check: %s", r.stdout)
	}
	// Pairing again keeps the identity (same device id) and rotates the token.
	r = runCLI(nil, nil, "pair", "--gateway", base, "--name", "cli box", "--state-dir", dir, "--json")
	wantCode(t, r, 0)
	var again pairStatus
	json.Unmarshal([]byte(r.stdout), &again)
	if again.DeviceID != st.DeviceID {
		t.Fatalf("re-pairing changed the device id: %s → %s", st.DeviceID, again.DeviceID)
	}
	if st, _ := identityWith(t, base, string(tok)); st != 401 {
		t.Fatalf("the previous token still works after re-pairing: %d", st)
	}
	wantCode(t, runCLI(nil, nil, "devices", "revoke", st.DeviceID, "--admin-url", admin), 0)
	time.Sleep(50 * time.Millisecond)
	wantCode(t, runCLI(nil, nil, "pair", "status", "--check", "--state-dir", dir), 1)
	wantCode(t, runCLI(nil, nil, "pair", "status", "--state-dir", t.TempDir()), 1)
}

func TestPairCLIWaitsForApproval(t *testing.T) {
	base, admin := startGate(t, "pairing {\n auto_approve_local off\n }")
	dir := filepath.Join(t.TempDir(), "device")
	t.Setenv(vault.PassphraseEnv, "pair cli test")
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), &cli{stdin: strings.NewReader(""), stdout: &syncBuffer{}, stderr: &stderr},
			[]string{"pair", "--gateway", base, "--name", "waiting box", "--state-dir", dir})
	}()
	re := regexp.MustCompile(`clawguard devices approve (pr_[A-Za-z0-9_-]{22})`)
	var id string
	for deadline := time.Now().Add(10 * time.Second); id == ""; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			id = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no approval hint; stderr: %s", stderr.String())
		}
	}
	if !regexp.MustCompile(`\d:\d\d left to approve`).MatchString(stderr.String()) {
		t.Fatalf("no countdown: %s", stderr.String())
	}
	wantCode(t, runCLI(nil, nil, "devices", "approve", id, "--admin-url", admin), 0)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("pair exited %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("pair did not finish after approval")
	}
	wantCode(t, runCLI(nil, nil, "pair", "status", "--check", "--state-dir", dir), 0)
}

// TestDevicesCLIPrefixes: approve, reject, rename and revoke take any
// unique prefix of an id as the lists show it; an ambiguous one is refused
// with the candidates.
func TestDevicesCLIPrefixes(t *testing.T) {
	base, admin := startGate(t, "")
	s1, id1 := remoteSession(t, base)
	_, id2 := remoteSession(t, base)

	// "pr_" starts every request id: refused, both listed.
	r := runCLI(nil, nil, "devices", "approve", "pr_", "--admin-url", admin)
	wantCode(t, r, 1, `"pr_" is the start of 2 pending pairing request ids`, id1, id2)
	wantCode(t, runCLI(nil, nil, "devices", "reject", "pr_zzzzzzzz-nothing", "--admin-url", admin), 1, "no pending pairing request id starts with")

	// The shortest prefix of id1 that id2 does not share.
	n := 4
	for strings.HasPrefix(id2, id1[:n]) {
		n++
	}
	r = runCLI(nil, nil, "devices", "approve", id1[:n], "--admin-url", admin)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "approved "+id1) {
		t.Fatalf("approve by prefix %q: %s", id1[:n], r.stdout)
	}
	resp, err := s1.Poll(context.Background(), id1)
	if err != nil || resp.Status != pairing.StatusApproved {
		t.Fatalf("poll after approval by prefix: %+v %v", resp, err)
	}
	dev := resp.DeviceID

	// The second request by its device id as the pending list shows it
	// (12 characters and "…").
	r = runCLI(nil, nil, "devices", "list", "--admin-url", admin)
	m := regexp.MustCompile(regexp.QuoteMeta(id2) + `\s+remote phone\s+([0-9a-f]{12}…)`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("pending list lacks %s with a short device id:\n%s", id2, r.stdout)
	}
	wantCode(t, runCLI(nil, nil, "devices", "reject", m[1], "--admin-url", admin), 0)

	r = runCLI(nil, nil, "devices", "rename", dev[:8], "prefix phone", "--admin-url", admin)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "renamed device "+dev) {
		t.Fatalf("rename by prefix: %s", r.stdout)
	}
	wantCode(t, runCLI(nil, nil, "devices", "revoke", "fx", "--admin-url", admin), 1, "no device id starts with")
	r = runCLI(nil, nil, "devices", "revoke", dev[:6]+"…", "--admin-url", admin)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "revoked device "+dev) {
		t.Fatalf("revoke by prefix: %s", r.stdout)
	}
}

// TestPairCLIHelpListsFlags: pair --help names every flag of pair.
func TestPairCLIHelpListsFlags(t *testing.T) {
	r := runCLI(nil, nil, "pair", "--help")
	wantCode(t, r, 0)
	for _, f := range []string{"-gateway", "-name", "-timeout", "-json", "-state-dir", "pair status"} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("pair --help lacks %s:\n%s", f, r.stdout)
		}
	}
}

// TestPairCLICountdownFollowsTimeout: with a --timeout shorter than the
// request's life, the countdown counts down to the timeout, and pair gives
// up then.
func TestPairCLICountdownFollowsTimeout(t *testing.T) {
	base, _ := startGate(t, "pairing {\n auto_approve_local off\n }")
	t.Setenv(vault.PassphraseEnv, "pair cli test")
	start := time.Now()
	r := runCLI(strings.NewReader(""), nil, "pair", "--gateway", base, "--name", "short wait", "--timeout", "3s",
		"--state-dir", filepath.Join(t.TempDir(), "device"))
	wantCode(t, r, 1, "gave up after 3s waiting for approval (--timeout)", "(--timeout, in 3s)")
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("pair took %s with --timeout 3s", el)
	}
	if !regexp.MustCompile(`(?m)^  0:0[0-3] left to approve$`).MatchString(r.stderr) {
		t.Fatalf("countdown does not follow --timeout:\n%s", r.stderr)
	}
	if regexp.MustCompile(`[1-9]\d*:\d\d left to approve`).MatchString(r.stderr) {
		t.Fatalf("countdown shows the request's expiry, not --timeout:\n%s", r.stderr)
	}
}
