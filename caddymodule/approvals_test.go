package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/pairclient"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/trail"
	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
)

// startSidecar runs the real sidecar daemon (real sandboxes) in state
// directory dir, its socket the default <dir>/sidecar.sock, with an
// approvals file that asks about everything; it returns a stop function.
func startSidecar(t *testing.T, dir string) func() {
	t.Helper()
	dcli := sandboxtest.Client(t)
	inst := sandboxtest.Instance(t, dcli)
	os.WriteFile(filepath.Join(dir, wire.FileSidecarConfig), []byte(`{"instance": "`+inst+`",
	  "sandboxes": {"*": {"image": "`+sandboxtest.TestImage(t, dcli)+`"}}}`), 0o600)
	os.WriteFile(approvals.DefaultPath(dir), []byte(`{"version": 1, "defaults": {"mode": "ask", "ask_timeout": "1m"}}`), 0o600)
	secrets, err := vault.OpenWithOptions(vault.Options{StateDir: dir, Passphrase: "test", ScryptN: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- sidecar.Run(ctx, sidecar.DaemonOptions{StateDir: dir, Secrets: secrets, Ready: func(string) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("sidecar did not start: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("sidecar: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

// startGateWithSidecar runs the gate (state in dir, alice an admin) with a
// route for agents to the sidecar, as a deployment would have.
func startGateWithSidecar(t *testing.T, dir string) *pairEnv {
	t.Helper()
	port, admin, ui := testcaddy.FreePort(t), testcaddy.FreePort(t), testcaddy.FreePort(t)
	cfg := testcaddy.Global(admin) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token %s
		password alice %s
		admins user:alice
		state_dir %s
		admin_listen 127.0.0.1:%d
	}
	handle /v1/* {
		reverse_proxy unix/%s
	}
}
`, port, testToken, htpasswdHash(t, "alice", testPassword), dir, ui, filepath.Join(dir, wire.FileSidecarSocket))
	testcaddy.Load(t, cfg)
	return &pairEnv{base: fmt.Sprintf("http://127.0.0.1:%d", port), ui: fmt.Sprintf("http://127.0.0.1:%d", ui), admin: admin, dir: dir, cfg: cfg}
}

type execAnswer struct {
	status int
	body   map[string]any
}

// agentExec runs a command through the gate's agent route as the shared
// token's holder and returns its eventual answer.
func agentExec(e *pairEnv, argv ...string) <-chan execAnswer {
	ch := make(chan execAnswer, 1)
	go func() {
		b, _ := json.Marshal(map[string]any{"agent": "main", "session": "s1", "argv": argv})
		req, _ := http.NewRequest("POST", e.base+"/v1/exec", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+testToken)
		c := testcaddy.Client("")
		c.Timeout = 90 * time.Second
		resp, err := c.Do(req)
		if err != nil {
			ch <- execAnswer{body: map[string]any{"error": err.Error()}}
			return
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		ch <- execAnswer{resp.StatusCode, out}
	}()
	return ch
}

func awaitExec(t *testing.T, ch <-chan execAnswer) execAnswer {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(90 * time.Second):
		t.Fatal("exec did not return")
		return execAnswer{}
	}
}

// pendingViaGate waits for one pending ask, listed through the gate.
func pendingViaGate(t *testing.T, e *pairEnv) approvals.Approval {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var out struct{ Approvals []approvals.Approval }
		if st := adminAPI(t, e, testcaddy.Client(""), "GET", "approvals", nil, &out); st != 200 {
			t.Fatalf("list through the gate: %d", st)
		}
		if len(out.Approvals) == 1 && out.Approvals[0].Waiters == 1 {
			return out.Approvals[0]
		}
	}
	t.Fatal("no pending ask")
	return approvals.Approval{}
}

// TestApprovalsThroughGate: the gate forwards the approvals admin API to
// the real sidecar under the admin API's rules, an agent cannot approve its
// own command through its route to the sidecar, and pairing decisions are
// in the same audit trail as the sidecar's.
func TestApprovalsThroughGate(t *testing.T) {
	dir := t.TempDir()
	stopSidecar := startSidecar(t, dir)
	e := startGateWithSidecar(t, dir)
	api := e.ui + "/.clawguard/api/approvals"

	ch := agentExec(e, "cat", "/etc/hostname")
	a := pendingViaGate(t, e)
	if a.Command != "cat /etc/hostname" || !strings.HasPrefix(a.Identity, "token:") {
		t.Fatalf("pending ask through the gate: %+v", a)
	}
	decide := `{"decision":"allow-once"}`
	// The agent, through its own route to the sidecar, even claiming the
	// admin role: the gate strips the header, the sidecar refuses.
	st, code := call(t, testcaddy.Client(""), "POST", e.base+"/v1/approvals/"+a.ID,
		map[string]string{"Authorization": "Bearer " + testToken, "X-Clawguard-Role": "admin", "Content-Type": "application/json"}, decide)
	if st != 403 || code != "forbidden" {
		t.Fatalf("agent answering its own ask through the sidecar route: %d %s", st, code)
	}
	// The admin API's rules: CSRF token on writes, admins only, same site.
	if st, code := call(t, testcaddy.Client(""), "POST", api+"/"+a.ID, nil, decide); st != 403 || code != "csrf" {
		t.Fatalf("answer without the CSRF token: %d %s", st, code)
	}
	if st, _ := call(t, remoteClient(""), "GET", api, map[string]string{"Authorization": "Bearer " + testToken}, ""); st != 403 {
		t.Fatalf("a non-admin listing: %d", st)
	}
	if st, _ := call(t, testcaddy.Client(""), "GET", api, map[string]string{"Origin": "https://evil.example"}, ""); st != 401 {
		t.Fatalf("a page of another origin listing: %d", st)
	}
	if st, code := call(t, testcaddy.Client(""), "GET", api+"/a/b", nil, ""); st != 404 || code != "not_found" {
		t.Fatalf("a path beyond the API: %d %s", st, code)
	}
	// The live feed, through the gate.
	c, _, err := websocket.Dial(context.Background(), strings.Replace(api, "http:", "ws:", 1)+"/events", nil)
	if err != nil {
		t.Fatalf("feed through the gate: %v", err)
	}
	var first approvals.FeedMessage
	if err := wsjson.Read(context.Background(), c, &first); err != nil || first.Type != "snapshot" || len(first.Approvals) != 1 {
		t.Fatalf("feed's first message: %+v %v", first, err)
	}
	c.CloseNow()

	// alice, a listed admin elsewhere, answers with her session's token.
	aliceAuth := basic("alice", testPassword)
	var s pairing.Session
	req, _ := http.NewRequest("GET", e.ui+"/.clawguard/api/session", nil)
	req.Header.Set("Authorization", aliceAuth)
	resp, err := remoteClient("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	req, _ = http.NewRequest("POST", api+"/"+a.ID, strings.NewReader(decide))
	req.Header.Set("Authorization", aliceAuth)
	req.Header.Set(pairing.CSRFHeader, s.CSRFToken)
	resp, err = remoteClient("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var decided approvals.Approval
	json.NewDecoder(resp.Body).Decode(&decided)
	resp.Body.Close()
	if resp.StatusCode != 200 || decided.DecidedBy != "user:alice" || decided.State != approvals.StateAllowed {
		t.Fatalf("alice's allow-once: %d %+v", resp.StatusCode, decided)
	}
	if r := awaitExec(t, ch); r.status != 200 || r.body["stdout"] != "sandbox\n" {
		t.Fatalf("exec after the approval: %d %v", r.status, r.body)
	}

	// Pairing decisions: approve, reject, rename, revoke (admin API) and a
	// local auto-approval.
	_, id1 := pendingRequest(t, e, newKey(t), "phone")
	_, id2 := pendingRequest(t, e, newKey(t), "tablet")
	adminAPI(t, e, testcaddy.Client(""), "POST", "pairing/"+id1+"/approve", nil, nil)
	adminAPI(t, e, testcaddy.Client(""), "POST", "pairing/"+id2+"/reject", nil, nil)
	var list deviceList
	adminAPI(t, e, testcaddy.Client(""), "GET", "devices", nil, &list)
	dev := list.Devices[0].ID
	adminAPI(t, e, testcaddy.Client(""), "POST", "devices/"+dev+"/rename", map[string]string{"name": "old phone"}, nil)
	adminAPI(t, e, testcaddy.Client(""), "POST", "devices/"+dev+"/revoke", nil, nil)
	if _, err := pairclient.Pair(context.Background(), pairclient.Options{Gateway: e.base, Name: "this laptop", Key: newKey(t), HTTPClient: testcaddy.Client("")}); err != nil {
		t.Fatalf("local pairing: %v", err)
	}
	// A refused write records nothing.
	if st := adminAPI(t, e, testcaddy.Client(""), "POST", "devices/"+strings.Repeat("0", 64)+"/revoke", nil, nil); st != 404 {
		t.Fatalf("revoke unknown: %d", st)
	}

	var actions []string
	kinds := map[string]int{}
	for _, rec := range readTrail(t, dir) {
		kinds[rec.Kind]++
		if rec.Kind != trail.KindPairing {
			continue
		}
		var f pairingRecord
		json.Unmarshal(rec.Fields, &f)
		if rec.Identity != "local" || f.DeviceID == "" || f.ClientIP == "" {
			t.Errorf("pairing record %+v %+v", rec, f)
		}
		actions = append(actions, f.Action)
	}
	if strings.Join(actions, ",") != "approved,rejected,renamed,revoked,auto_approved" || kinds[trail.KindApproval] != 1 {
		t.Fatalf("trail: pairing actions %v, kinds %v", actions, kinds)
	}
	if rep, err := trail.Verify(trail.Dir(dir)); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}

	var status approvalsStatus
	if adminAPI(t, e, testcaddy.Client(""), "GET", "approvals/status", nil, &status); !status.Available {
		t.Fatalf("status with the sidecar up: %+v", status)
	}
	stopSidecar()
	if adminAPI(t, e, testcaddy.Client(""), "GET", "approvals/status", nil, &status); status.Available || !strings.Contains(status.Error, "no sidecar listens") {
		t.Fatalf("status with the sidecar down: %+v", status)
	}
	if st, code := call(t, testcaddy.Client(""), "GET", api, nil, ""); st != 502 || code != "sidecar_unavailable" {
		t.Fatalf("sidecar down: %d %s", st, code)
	}
}

func readTrail(t *testing.T, dir string) []trail.Record {
	t.Helper()
	f, err := os.Open(filepath.Join(trail.Dir(dir), "trail-000001.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []trail.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rec, err := trail.ParseLine(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// TestApprovalsUIInChromium: the admin UI shows a command waiting for
// approval as it arrives (live feed), a click allows it, and the command
// completes.
func TestApprovalsUIInChromium(t *testing.T) {
	ctx, console := browser(t)
	dir := t.TempDir()
	startSidecar(t, dir)
	e := startGateWithSidecar(t, dir)
	row := chromedp.CSS(`tr[data-approval]`)
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.ui+"/.clawguard/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`#approvals p.empty`)),
	)
	if err != nil {
		t.Fatalf("the UI's approvals section: %v\nconsole:\n%s", err, console)
	}
	ch := agentExec(e, "cat", "/etc/hostname")
	err = chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-approval] button[data-action="allow-once"]`)))
	command, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-approval] code.command`)))
	if err != nil || command != "cat /etc/hostname" {
		t.Fatalf("the pending command did not show (%q): %v\nconsole:\n%s", command, err, console)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`tr[data-approval] button[data-action="allow-once"]`)),
		chromedp.WaitNotPresent(row),
		chromedp.WaitVisible(chromedp.CSS(`#approvals p.empty`)),
	)
	if err != nil {
		t.Fatalf("allowing in the UI: %v\nconsole:\n%s", err, console)
	}
	if r := awaitExec(t, ch); r.status != 200 || r.body["stdout"] != "sandbox\n" || r.body["decision"] != "allow-once" {
		t.Fatalf("exec after the UI's approval: %d %v", r.status, r.body)
	}
	if c := console.String(); c != "" {
		t.Fatalf("errors in the page (CSP violations show here):\n%s", c)
	}
	var got struct{ Approvals []approvals.Approval }
	if adminAPI(t, e, testcaddy.Client(""), "GET", "approvals?state=decided", nil, &got); len(got.Approvals) != 1 || got.Approvals[0].DecidedBy != "local" {
		t.Fatalf("decided: %+v", got)
	}
}
