package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/trail"
	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
)

// TestApprovalsCLI answers asks with `clawguard approvals` against a real
// sidecar (real sandboxes) that requires the gate's signed identity: the
// CLI signs with the key from the vault. The trail then names the CLI's
// user as the decider, verifies, and a tampered line is caught.
func TestApprovalsCLI(t *testing.T) {
	t.Setenv(vault.PassphraseEnv, "approvals cli test")
	dcli := sandboxtest.Client(t)
	inst := sandboxtest.Instance(t, dcli)
	dir := t.TempDir()
	key := []byte("0123456789abcdef0123456789abcdef-gate-key")
	v, err := vault.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set("sidecar-identity", key); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, wire.FileSidecarConfig), []byte(`{"instance": "`+inst+`", "identity_keys": {"gate1": "sidecar-identity"},
	  "sandboxes": {"*": {"image": "`+sandboxtest.TestImage(t, dcli)+`"}}}`), 0o600)
	os.WriteFile(approvals.DefaultPath(dir), []byte(`{"version": 1, "defaults": {"mode": "ask", "ask_timeout": "1m"}}`), 0o600)
	socket := filepath.Join(dir, wire.FileSidecarSocket)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- sidecar.Run(ctx, sidecar.DaemonOptions{StateDir: dir, Ready: func(string) { close(ready) }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sidecar: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("sidecar did not start: %v", err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	// exec sends an agent's command as the gate would: signed, no admin role.
	exec := func(argv ...string) <-chan map[string]any {
		ch := make(chan map[string]any, 1)
		go func() {
			b, _ := json.Marshal(map[string]any{"agent": "main", "session": "s1", "argv": argv})
			req, _ := http.NewRequest("POST", "http://sidecar/v1/exec", bytes.NewReader(b))
			req.Header.Set(wire.HeaderIdentity, "device:d1")
			httpsig.SignIdentity(req, "gate1", key)
			resp, err := hc.Do(req)
			if err != nil {
				ch <- map[string]any{"error": err.Error()}
				return
			}
			defer resp.Body.Close()
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			out["status"] = float64(resp.StatusCode)
			ch <- out
		}()
		return ch
	}
	result := func(ch <-chan map[string]any) map[string]any {
		select {
		case r := <-ch:
			return r
		case <-time.After(60 * time.Second):
			t.Fatal("exec did not return")
			return nil
		}
	}
	cliArgs := func(args ...string) []string { return append(args, "--state-dir", dir) }
	pending := func() approvals.Approval {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			r := runCLI(nil, nil, cliArgs("approvals", "list", "--json")...)
			wantCode(t, r, 0)
			var out struct{ Approvals []approvals.Approval }
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("list --json: %v: %q", err, r.stdout)
			}
			if len(out.Approvals) == 1 && out.Approvals[0].Waiters == 1 {
				return out.Approvals[0]
			}
		}
		t.Fatal("no pending ask")
		return approvals.Approval{}
	}
	me, _ := user.Current()
	who := "unix:" + me.Username

	// ask → allow-once in the CLI → it runs.
	ch := exec("cat", "/etc/hostname")
	a := pending()
	if a.Command != "cat /etc/hostname" || a.Identity != "device:d1" || a.Resolved != "/bin/busybox" {
		t.Fatalf("pending ask: %+v", a)
	}
	r := runCLI(nil, nil, cliArgs("approvals", "list")...)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "COMMAND") || !strings.Contains(r.stdout, a.ID) || !strings.Contains(r.stdout, "cat /etc/hostname") {
		t.Fatalf("list: %q", r.stdout)
	}
	r = runCLI(nil, nil, cliArgs("approvals", "allow-once", a.ID)...)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, a.ID+" allowed") || !strings.Contains(r.stdout, "allowed once by "+who) {
		t.Fatalf("allow-once: %q", r.stdout)
	}
	if out := result(ch); out["status"] != 200.0 || out["stdout"] != "sandbox\n" || out["approval_id"] != a.ID {
		t.Fatalf("exec after allow-once: %v", out)
	}

	// ask → deny → 403.
	ch = exec("cat", "/etc/hostname")
	a = pending()
	r = runCLI(nil, nil, append(cliArgs("approvals", "deny"), a.ID, "--json")...) // flags after the ID too
	wantCode(t, r, 0)
	var denied approvals.Approval
	if json.Unmarshal([]byte(r.stdout), &denied) != nil || denied.State != approvals.StateDenied || denied.DecidedBy != who {
		t.Fatalf("deny --json: %q", r.stdout)
	}
	if out := result(ch); out["status"] != 403.0 || out["code"] != "denied" {
		t.Fatalf("exec after deny: %v", out)
	}
	wantCode(t, runCLI(nil, nil, cliArgs("approvals", "deny", a.ID)...), 1, "already decided")

	// allow-always: the second run needs no prompt.
	ch = exec("uname", "-s")
	a = pending()
	wantCode(t, runCLI(nil, nil, cliArgs("approvals", "allow-always", a.ID, "--args", "^uname -[sm]$")...), 0)
	if out := result(ch); out["status"] != 200.0 || out["stdout"] != "Linux\n" {
		t.Fatalf("exec after allow-always: %v", out)
	}
	if out := result(exec("uname", "-m")); out["status"] != 200.0 || out["decision"] != "allow" {
		t.Fatalf("a run the recorded pattern covers: %v", out)
	}

	// allow-always for the bare shell is refused; the ask stays pending.
	ch = exec("sh")
	a = pending()
	wantCode(t, runCLI(nil, nil, cliArgs("approvals", "allow-always", a.ID)...), 1, "runs whatever it reads", "still pending")
	wantCode(t, runCLI(nil, nil, cliArgs("approvals", "deny", a.ID)...), 0)
	if out := result(ch); out["status"] != 403.0 {
		t.Fatalf("sh after deny: %v", out)
	}

	// Usage errors, and a request without the gate's signature.
	wantCode(t, runCLI(nil, nil, cliArgs("approvals", "allow-once")...), 2, "missing the approval ID")
	wantCode(t, runCLI(nil, nil, cliArgs("approvals", "deny", "a", "b")...), 2, "unexpected argument")
	wantCode(t, runCLI(nil, nil, cliArgs("approvals", "list", "--state", "bogus")...), 1, "not one of pending")
	req, _ := http.NewRequest("GET", "http://sidecar/v1/approvals", nil)
	req.Header.Set(wire.HeaderIdentity, who)
	req.Header.Set(wire.HeaderRole, wire.RoleAdmin)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("unsigned list: %v %v", resp, err)
	}

	// The trail names the decider; it verifies; a tampered line is caught.
	r = runCLI(nil, nil, cliArgs("audit", "verify-trail")...)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "OK: ") {
		t.Fatalf("verify-trail: %q", r.stdout)
	}
	path := filepath.Join(trail.Dir(dir), "trail-000001.jsonl")
	b, _ := os.ReadFile(path)
	if bytes.Count(b, []byte(`"identity":"`+who+`"`)) != 4 {
		t.Fatalf("the trail does not name %s as the decider of 4 asks:\n%s", who, b)
	}
	os.WriteFile(path, bytes.Replace(b, []byte(`"decision":"deny"`), []byte(`"decision":"allow-once"`), 1), 0o600)
	wantCode(t, runCLI(nil, nil, cliArgs("audit", "verify-trail")...), 1)
	r = runCLI(nil, nil, cliArgs("audit", "verify-trail")...)
	if !strings.Contains(r.stdout, "edited") {
		t.Fatalf("tampering not reported: %q", r.stdout)
	}
}

// TestSidecarCheckApprovals: `sidecar --check` also refuses the approvals
// file the sidecar would refuse to start on.
func TestSidecarCheckApprovals(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sidecar.json"), []byte(`{}`), 0o600) // missing is an error of its own
	r := runCLI(nil, nil, "sidecar", "--check", "--state-dir", dir)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "policy: approvals "+approvals.DefaultPath(dir)) || !strings.Contains(r.stdout, "gateway_host false") {
		t.Fatalf("check: %q", r.stdout)
	}
	os.WriteFile(approvals.DefaultPath(dir), []byte(`{"version": 1, "defaults": {"ask_fallback": "full"}}`), 0o600)
	wantCode(t, runCLI(nil, nil, "sidecar", "--check", "--state-dir", dir), 1, "ask_fallback", "full is not allowed")
}
