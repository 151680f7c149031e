package sidecar_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/trail"
	"github.com/clawguard/clawguard/wire"
)

// admin is how the gate's admin API (and `clawguard approvals`) reach the
// approvals API.
var admin = map[string]string{wire.HeaderIdentity: "user:ann", wire.HeaderMethod: "password", wire.HeaderRole: wire.RoleAdmin}

// agentID is an agent's request as the gate forwards it: no admin role.
var agentID = map[string]string{wire.HeaderIdentity: "device:d1", wire.HeaderMethod: "device"}

// withApprovals writes the approvals file before the daemon starts.
func withApprovals(t *testing.T, file string) func(*sidecar.DaemonOptions) {
	return func(o *sidecar.DaemonOptions) {
		if err := os.WriteFile(approvals.DefaultPath(o.StateDir), []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

type execResult struct {
	code int
	body map[string]any
}

// execAsync sends an exec and returns its eventual answer.
func (d *daemon) execAsync(req map[string]any, hdr map[string]string) <-chan execResult {
	ch := make(chan execResult, 1)
	go func() {
		code, body := d.do("POST", "/v1/exec", req, hdr)
		ch <- execResult{code, body}
	}()
	return ch
}

// pendingAsk waits for the one pending ask and returns it.
func (d *daemon) pendingAsk() map[string]any {
	d.t.Helper()
	var ask map[string]any
	waitFor(d.t, "a pending ask", func() bool {
		code, body := d.do("GET", "/v1/approvals?state=pending", nil, admin)
		if code != 200 {
			d.t.Fatalf("list: %d %v", code, body)
		}
		l, _ := body["approvals"].([]any)
		if len(l) == 1 && l[0].(map[string]any)["waiters"] == 1.0 {
			ask = l[0].(map[string]any)
			return true
		}
		return false
	})
	return ask
}

func waitResult(t *testing.T, ch <-chan execResult) execResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("exec did not return")
		return execResult{}
	}
}

// trailRecords reads every record of the daemon's audit trail.
func trailRecords(t *testing.T, state string) []trail.Record {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(trail.Dir(state), "trail-*.jsonl"))
	slices.Sort(files)
	var out []trail.Record
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, trail.MaxRecordSize+1)
		for sc.Scan() {
			rec, err := trail.ParseLine(sc.Bytes())
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, rec)
		}
		fh.Close()
	}
	return out
}

func fields(t *testing.T, r trail.Record) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Fields, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const approvalsSandboxConfig = `{"instance": "INSTANCE",
  "sandboxes": {
    "*": {"image": "IMAGE", "timeout": "30s"},
    "tmpfirst": {"image": "IMAGE", "path": "/tmp:/bin"}
  }}`

// TestApprovalsSandbox drives the approvals policy through the sidecar API
// with real sandboxes: commands are judged on the program the sandbox image
// holds, unknown ones wait for a person, and every decision and refusal is
// in the audit trail.
func TestApprovalsSandbox(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, approvalsSandboxConfig, withApprovals(t, `{"version": 1,
	  "defaults": {"mode": "ask", "ask_timeout": "1m"},
	  "agents": {"main": {"allow": [{"path": "/bin/busybox", "args": "^echo( .*)?$"}]}}}`))
	run := func(argv ...string) map[string]any {
		return map[string]any{"agent": "main", "session": "s1", "argv": argv}
	}

	// Allowlist: echo is busybox in the image; the entry names the
	// resolved program and the applet.
	code, body := d.do("POST", "/v1/exec", run("echo", "allowed"), agentID)
	if code != 200 || body["stdout"] != "allowed\n" || body["decision"] != "allow" {
		t.Fatalf("allowlisted echo: %d %v", code, body)
	}

	// Ask, then a person allows once: it runs.
	ch := d.execAsync(run("cat", "/etc/hostname"), agentID)
	ask := d.pendingAsk()
	if ask["agent"] != "main" || ask["identity"] != "device:d1" || ask["resolved"] != "/bin/busybox" ||
		ask["command"] != "cat /etc/hostname" || ask["target"] != "sandbox" || ask["cwd"] != "/workspace" {
		t.Fatalf("pending ask: %v", ask)
	}
	id := ask["id"].(string)
	// The agent's own identity cannot answer (the gate forwards agents
	// without the admin role).
	if code, body := d.do("POST", "/v1/approvals/"+id, map[string]any{"decision": "allow-once"}, agentID); code != 403 || body["code"] != "forbidden" {
		t.Fatalf("agent answering its own ask: %d %v", code, body)
	}
	if code, body := d.do("POST", "/v1/approvals/"+id, map[string]any{"decision": "allow-once"}, admin); code != 200 || body["state"] != "allowed" {
		t.Fatalf("allow-once: %d %v", code, body)
	}
	r := waitResult(t, ch)
	if r.code != 200 || r.body["stdout"] != "sandbox\n" || r.body["decision"] != "allow-once" || r.body["approval_id"] != id {
		t.Fatalf("exec after allow-once: %d %v", r.code, r.body)
	}

	// Ask, then deny: 403 with the approval.
	ch = d.execAsync(run("cat", "/etc/hostname"), agentID)
	id = d.pendingAsk()["id"].(string)
	d.do("POST", "/v1/approvals/"+id, map[string]any{"decision": "deny"}, admin)
	if r := waitResult(t, ch); r.code != 403 || r.body["code"] != "denied" || r.body["approval_id"] != id ||
		!strings.Contains(r.body["error"].(string), "denied by user:ann") {
		t.Fatalf("exec after deny: %d %v", r.code, r.body)
	}

	// allow-always records an entry: the same command runs again without
	// a prompt.
	ch = d.execAsync(run("uname", "-s"), agentID)
	id = d.pendingAsk()["id"].(string)
	if code, body := d.do("POST", "/v1/approvals/"+id, map[string]any{"decision": "allow-always"}, admin); code != 200 || body["decision"] != "allow-always" {
		t.Fatalf("allow-always: %d %v", code, body)
	}
	if r := waitResult(t, ch); r.code != 200 || r.body["stdout"] != "Linux\n" {
		t.Fatalf("exec after allow-always: %d %v", r.code, r.body)
	}
	if code, body := d.do("POST", "/v1/exec", run("uname", "-s"), agentID); code != 200 || body["decision"] != "allow" || body["approval_id"] != nil {
		t.Fatalf("second run after allow-always: %d %v", code, body)
	}
	cfg, err := approvals.Load(approvals.DefaultPath(d.state))
	if err != nil || len(cfg.Agents["main"].Allow) != 2 || cfg.Agents["main"].Allow[1].Path != "/bin/busybox" || cfg.Agents["main"].Allow[1].Args != "^uname -s$" {
		t.Fatalf("approvals file after allow-always: %+v %v", cfg.Agents["main"], err)
	}

	// allow-always for the shell is refused: for a pattern that would
	// admit any code, and for the bare shell. The asks stay pending.
	ch = d.execAsync(run("sh", "-c", "echo hi"), agentID)
	id = d.pendingAsk()["id"].(string)
	if code, body := d.do("POST", "/v1/approvals/"+id, map[string]any{"decision": "allow-always", "args": "^sh -c .*$"}, admin); code != 422 ||
		body["code"] != "allow_always_refused" || !strings.Contains(body["error"].(string), "run any code") {
		t.Fatalf("allow-always ^sh -c .*$: %d %v", code, body)
	}
	d.do("POST", "/v1/approvals/"+id, map[string]any{"decision": "deny"}, admin)
	waitResult(t, ch)
	ch = d.execAsync(run("sh"), agentID)
	ask = d.pendingAsk()
	if !strings.Contains(ask["allow_always_refused"].(string), "runs whatever it reads") {
		t.Fatalf("bare sh: allow-always offered: %v", ask)
	}
	if code, body := d.do("POST", "/v1/approvals/"+ask["id"].(string), map[string]any{"decision": "allow-always"}, admin); code != 422 {
		t.Fatalf("allow-always for bare sh: %d %v", code, body)
	}
	d.do("POST", "/v1/approvals/"+ask["id"].(string), map[string]any{"decision": "deny"}, admin)
	waitResult(t, ch)

	// A directory on PATH that is mounted at run time (/tmp) could shadow
	// the judged program: the lookup stops there and the command is denied
	// at once, not asked about. So is a program on the workspace mount.
	for _, req := range []map[string]any{
		{"agent": "tmpfirst", "session": "s1", "argv": []string{"echo", "x"}},
		{"agent": "main", "session": "s1", "argv": []string{"/workspace/tool"}},
		{"agent": "main", "session": "s1", "argv": []string{"./tool"}},
	} {
		if code, body := d.do("POST", "/v1/exec", req, agentID); code != 403 || !strings.Contains(body["error"].(string), approvals.ErrUnknownContent.Error()) {
			t.Fatalf("%v: %d %v", req, code, body)
		}
	}
	// Host commands: this sidecar is not the gateway host's.
	if code, body := d.do("POST", "/v1/exec", map[string]any{"agent": "main", "argv": []string{"/bin/echo"}, "target": "host", "elevated": true, "cwd": "/"}, agentID); code != 403 ||
		!strings.Contains(body["error"].(string), "gateway_host") {
		t.Fatalf("host exec on a non-gateway sidecar: %d %v", code, body)
	}

	// Nobody answers: ask_timeout passes and the fallback denies.
	os.WriteFile(approvals.DefaultPath(d.state), []byte(`{"version": 1, "defaults": {"mode": "ask", "ask_timeout": "1s"}}`), 0o600)
	start := time.Now()
	code, body = d.do("POST", "/v1/exec", run("cat", "/etc/hostname"), agentID)
	if code != 403 || !strings.Contains(body["error"].(string), "nobody answered within 1s; ask_fallback deny") || time.Since(start) < time.Second {
		t.Fatalf("timeout: %d %v after %s", code, body, time.Since(start))
	}

	// Metrics.
	m := d.metrics()
	for label, want := range map[string]float64{"allow-once": 1, "allow-always": 1, "deny": 3, "timeout": 1, "withdrawn": 0} {
		if got := counter(m, "clawguard_approval_decisions_total", "decision", label); got != want {
			t.Errorf("clawguard_approval_decisions_total{decision=%q} = %v, want %v", label, got, want)
		}
	}
	if got := counter(m, "clawguard_approvals_pending"); got != 0 {
		t.Errorf("clawguard_approvals_pending = %v", got)
	}

	// The trail: every decision and refusal, with identity and time, and
	// the chain verifies.
	recs := trailRecords(t, d.state)
	count := map[string]int{}
	for _, rec := range recs {
		count[rec.Kind]++
		f := fields(t, rec)
		if rec.Time.IsZero() || rec.Identity == "" {
			t.Errorf("record without identity or time: %+v", rec)
		}
		switch {
		case rec.Kind == trail.KindApproval && f["state"] == "allowed" && f["decision"] == "allow-once" && rec.Identity != "user:ann":
			t.Errorf("allow-once recorded for %q", rec.Identity)
		case rec.Kind == trail.KindApproval && f["state"] == "timed_out" && rec.Identity != "sidecar":
			t.Errorf("timeout recorded for %q", rec.Identity)
		case rec.Kind == trail.KindExecDenied && rec.Identity != "device:d1":
			t.Errorf("denied exec recorded for %q: %v", rec.Identity, f)
		}
	}
	// approvals: allow-once, deny, allow-always, deny (sh -c), deny (sh),
	// timeout; denials: deny, sh -c, sh, 3 unknown-content, host, timeout.
	if count[trail.KindApproval] != 6 || count[trail.KindExecDenied] != 8 {
		t.Fatalf("trail kinds %v", count)
	}
	if rep, err := trail.Verify(trail.Dir(d.state)); err != nil || !rep.OK || rep.Records != uint64(len(recs)) {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// TestApprovalsElevated: on the gateway host's sidecar, an agent whose
// approvals config says elevated: true runs allowed commands on the host,
// each run recorded in the audit trail before it starts and when it ends;
// every other host request is refused and recorded.
func TestApprovalsElevated(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, `{"instance": "INSTANCE", "gateway_host": true, "host": {"timeout": "20s", "output_limit_bytes": 200}}`, withApprovals(t, `{"version": 1,
	  "defaults": {"mode": "allowlist"},
	  "agents": {
	    "ops": {"elevated": true, "allow": [{"path": "/usr/bin/echo"}, {"path": "/usr/bin/env", "args": "^$"}, {"path": "/usr/bin/sleep"}]},
	    "main": {"allow": [{"path": "/usr/bin/echo"}]}}}`))
	host := func(agent string, argv ...string) map[string]any {
		return map[string]any{"agent": agent, "argv": argv, "target": "host", "elevated": true, "cwd": "/"}
	}
	code, body := d.do("POST", "/v1/exec", host("ops", "echo", "elevated-ok"), agentID)
	if code != 200 || body["stdout"] != "elevated-ok\n" || body["exit_code"] != 0.0 {
		t.Fatalf("elevated echo: %d %v", code, body)
	}

	code, body = d.do("POST", "/v1/exec", host("ops", "echo", strings.Repeat("x", 300)), agentID)
	if code != 200 || body["stdout"] != strings.Repeat("x", 200) || body["stdout_truncated"] != true {
		t.Fatalf("output past output_limit_bytes: %d %v", code, body)
	}

	// The command gets PATH, HOME and nothing of the sidecar's environment
	// (which may hold the vault passphrase).
	code, body = d.do("POST", "/v1/exec", host("ops", "env"), agentID)
	if code != 200 {
		t.Fatalf("elevated env: %d %v", code, body)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(body["stdout"].(string)), "\n") {
		name, _, _ := strings.Cut(line, "=")
		names = append(names, name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{"HOME", "PATH"}) {
		t.Fatalf("environment of a host command: %q", body["stdout"])
	}

	start := time.Now()
	req := host("ops", "sleep", "30")
	req["timeout_ms"] = 300
	if code, body := d.do("POST", "/v1/exec", req, agentID); code != 200 || body["timed_out"] != true || time.Since(start) > 10*time.Second {
		t.Fatalf("elevated sleep past its timeout: %d %v after %s", code, body, time.Since(start))
	}

	for _, c := range []struct {
		req  map[string]any
		want string
	}{
		{host("main", "echo", "x"), "elevated is off"},
		{map[string]any{"agent": "ops", "argv": []string{"echo"}, "target": "host", "cwd": "/"}, `"elevated": true`},
		{map[string]any{"agent": "ops", "argv": []string{"echo"}, "target": "host", "elevated": true, "cwd": "tmp"}, "absolute cwd"},
		{map[string]any{"agent": "ops", "argv": []string{"echo"}, "target": "host", "elevated": true, "cwd": "/", "env": map[string]string{"LD_PRELOAD": "/tmp/x.so"}}, "LD_PRELOAD"},
		{host("ops", "env", "FOO=1", "sh", "-c", "id"), "-c id (mode allowlist)"},
	} {
		if code, body := d.do("POST", "/v1/exec", c.req, agentID); code != 403 || !strings.Contains(body["error"].(string), c.want) {
			t.Errorf("%v: %d %v, want 403 with %q", c.req, code, body, c.want)
		}
	}

	var runs []map[string]any
	denied := 0
	for _, rec := range trailRecords(t, d.state) {
		switch rec.Kind {
		case trail.KindElevated:
			f := fields(t, rec)
			if rec.Identity != "device:d1" || f["agent"] != "ops" {
				t.Errorf("elevated record %+v %v", rec, f)
			}
			runs = append(runs, f)
		case trail.KindExecDenied:
			denied++
		}
	}
	if len(runs) != 8 || runs[0]["phase"] != "start" || runs[0]["exec"] != "/usr/bin/echo" || runs[0]["command"] != "echo elevated-ok" ||
		runs[1]["phase"] != "exit" || runs[1]["exit_code"] != 0.0 || runs[1]["run_id"] != runs[0]["run_id"] || runs[7]["timed_out"] != true {
		t.Fatalf("elevated runs in the trail: %v", runs)
	}
	if denied != 5 {
		t.Fatalf("%d denied execs recorded, want 5", denied)
	}
	if rep, err := trail.Verify(trail.Dir(d.state)); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
