package sidecar_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/trail"
	"github.com/clawguard/clawguard/wire"
)

// nodeConfig turns node_exec on with its own PATH and limits, next to a
// sandbox profile.
const nodeConfig = `{"instance": "INSTANCE",
  "node_exec": {"path": "/usr/bin:/bin", "timeout": "20s", "output_limit_bytes": 200},
  "sandboxes": {"*": {"image": "IMAGE", "timeout": "30s"}}}`

// nodeApprovals is the node's own approvals file; SH is the resolved
// shell (dash on Debian).
const nodeApprovals = `{"version": 1, "defaults": {"mode": "allowlist", "ask_timeout": "1m"},
  "agents": {
    "nodeagent": {"node": true, "allow": [
      {"path": "/usr/bin/id", "args": "^-u$"},
      {"path": "/usr/bin/env", "args": "^$"},
      {"path": "/usr/bin/echo"},
      {"path": "/usr/bin/sleep"},
      {"path": "SH", "args": "^-c .*$"}]},
    "asker": {"node": true, "mode": "ask", "allow": [{"path": "/usr/bin/id", "args": "^-u$"}]},
    "nonode": {"allow": [{"path": "/usr/bin/id"}]},
    "ops": {"elevated": true, "allow": [{"path": "/usr/bin/id"}]}}}`

// hostShell is what /usr/bin/sh resolves to here; the test needs the
// coreutils these tests run.
func hostShell(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/id", "/usr/bin/env", "/usr/bin/echo", "/usr/bin/sleep", "/usr/bin/uname"} {
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			t.Skipf("%s is not a regular file here: %v", p, err)
		}
	}
	sh, err := filepath.EvalSymlinks("/usr/bin/sh")
	if err != nil {
		t.Skip(err)
	}
	return sh
}

func nodeReq(agent string, argv ...string) map[string]any {
	return map[string]any{"agent": agent, "argv": argv, "target": "node", "cwd": "/"}
}

// TestNodeExec: with node_exec on, an agent whose approvals say node: true
// runs allowlisted programs of this host (judged as resolved on
// node_exec's PATH) through /v1/exec and /v1/exec/stream, with a clean
// environment, the timeout killing the whole process group and the output
// limit; every run is in the trail before it starts and when it ends;
// everything else is refused and recorded. Not parallel: it sets the
// vault passphrase in this process's environment.
func TestNodeExec(t *testing.T) {
	sh := hostShell(t)
	const passphrase = "node-test-vault-passphrase"
	t.Setenv("CLAWGUARD_VAULT_PASSPHRASE", passphrase)
	d := startDaemon(t, nodeConfig, withApprovals(t, strings.Replace(nodeApprovals, "SH", sh, 1)))

	code, body := d.do("POST", "/v1/exec", nodeReq("nodeagent", "id", "-u"), agentID)
	if code != 200 || body["stdout"] != fmt.Sprintf("%d\n", os.Getuid()) || body["decision"] != "allow" || body["sandbox_id"] != nil {
		t.Fatalf("id -u on the node: %d %v", code, body)
	}

	// PATH and HOME only, PATH node_exec's: not the sidecar's environment.
	code, body = d.do("POST", "/v1/exec", nodeReq("nodeagent", "env"), agentID)
	if code != 200 || strings.Contains(body["stdout"].(string), passphrase) || !strings.Contains(body["stdout"].(string), "PATH=/usr/bin:/bin\n") {
		t.Fatalf("env on the node: %d %v", code, body)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(body["stdout"].(string)), "\n") {
		name, _, _ := strings.Cut(line, "=")
		names = append(names, name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{"HOME", "PATH"}) {
		t.Fatalf("environment of a node command: %q", body["stdout"])
	}

	code, body = d.do("POST", "/v1/exec", nodeReq("nodeagent", "echo", strings.Repeat("x", 300)), agentID)
	if code != 200 || body["stdout"] != strings.Repeat("x", 200) || body["stdout_truncated"] != true {
		t.Fatalf("output past output_limit_bytes: %d %v", code, body)
	}

	// The timeout kills the process group: the shell's background child
	// is gone too.
	req := nodeReq("nodeagent", "sh", "-c", "sleep 300 & echo $!; wait")
	req["timeout_ms"] = 500
	start := time.Now()
	code, body = d.do("POST", "/v1/exec", req, agentID)
	if code != 200 || body["timed_out"] != true || time.Since(start) > 10*time.Second {
		t.Fatalf("sh past its timeout: %d %v after %s", code, body, time.Since(start))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(body["stdout"].(string)))
	if err != nil {
		t.Fatalf("background pid: %v", err)
	}
	waitFor(t, fmt.Sprintf("the background sleep (pid %d) to be killed", pid), func() bool { return !running(pid) })

	// The stream runs node commands too.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := d.dialStream(ctx, http.Header{wire.HeaderIdentity: {agentID[wire.HeaderIdentity]}, wire.HeaderMethod: {"device"}})
	if err != nil {
		t.Fatal(err)
	}
	wsjson.Write(ctx, c, nodeReq("nodeagent", "echo", "streamed"))
	var got []string
	for _, f := range frames(t, ctx, c) {
		got = append(got, f.Type+":"+f.Data)
	}
	if strings.Join(got, "|") != "started:|stdout:streamed\n|exit:" {
		t.Fatalf("node stream frames %q", got)
	}
	c.CloseNow()

	// A link named like an allowed program is judged as what it points
	// to, whether argv[0] names it relative to the cwd or absolutely.
	dir := t.TempDir()
	if err := os.Symlink(sh, filepath.Join(dir, "id")); err != nil {
		t.Fatal(err)
	}
	withEnv := func(req map[string]any, env map[string]string) map[string]any {
		req["env"] = env
		return req
	}
	inDir := nodeReq("nodeagent", "./id", "-u")
	inDir["cwd"] = dir
	relCwd := nodeReq("nodeagent", "id", "-u")
	relCwd["cwd"] = "tmp"
	for _, c := range []struct {
		req  map[string]any
		want string
	}{
		{nodeReq("nodeagent", "cat", "/etc/hostname"), "no allow entry matches /usr/bin/cat /etc/hostname (mode allowlist)"},
		{inDir, "no allow entry matches " + sh + " -u"},
		{nodeReq("nodeagent", filepath.Join(dir, "id"), "-u"), "no allow entry matches " + sh + " -u"},
		{withEnv(nodeReq("nodeagent", "id", "-u"), map[string]string{"PATH": dir}), "env PATH cannot be set"},
		{withEnv(nodeReq("nodeagent", "id", "-u"), map[string]string{"LD_PRELOAD": filepath.Join(dir, "x.so")}), "env LD_PRELOAD cannot be set"},
		{relCwd, `target node needs an absolute cwd, got "tmp"`},
		{nodeReq("nonode", "id", "-u"), `agent "nonode" may not run commands on this node host: node is off`},
		// Elevated stays the gateway host's: this sidecar has no gateway_host.
		{map[string]any{"agent": "ops", "argv": []string{"id"}, "target": "host", "elevated": true, "cwd": "/"}, "gateway_host"},
	} {
		if code, body := d.do("POST", "/v1/exec", c.req, agentID); code != 403 || body["code"] != "denied" || !strings.Contains(body["error"].(string), c.want) {
			t.Errorf("%v: %d %v, want 403 with %q", c.req, code, body, c.want)
		}
	}
	elevated := nodeReq("ops", "id")
	elevated["elevated"] = true
	if code, body := d.do("POST", "/v1/exec", elevated, agentID); code != 400 || !strings.Contains(body["error"].(string), `elevated: only with target "host"`) {
		t.Errorf("elevated on target node: %d %v", code, body)
	}

	// The trail: a start and an exit record per run, in order, and a
	// record per refusal the policy saw.
	var runs []map[string]any
	denied := 0
	for _, rec := range trailRecords(t, d.state) {
		switch rec.Kind {
		case "node_exec":
			f := fields(t, rec)
			if rec.Identity != "device:d1" || f["agent"] != "nodeagent" {
				t.Errorf("node record %+v %v", rec, f)
			}
			runs = append(runs, f)
		case trail.KindElevated:
			t.Errorf("a node run recorded as elevated: %+v", rec)
		case trail.KindExecDenied:
			denied++
		}
	}
	if len(runs) != 10 || runs[0]["phase"] != "start" || runs[0]["exec"] != "/usr/bin/id" || runs[0]["command"] != "id -u" || runs[0]["cwd"] != "/" ||
		runs[1]["phase"] != "exit" || runs[1]["exit_code"] != 0.0 || runs[1]["run_id"] != runs[0]["run_id"] ||
		runs[6]["exec"] != sh || runs[7]["timed_out"] != true {
		t.Fatalf("node runs in the trail: %v", runs)
	}
	if denied != 8 {
		t.Fatalf("%d denied execs recorded, want 8", denied)
	}
	if rep, err := trail.Verify(trail.Dir(d.state)); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}

	m := d.metrics()
	for _, c := range []struct {
		target, result string
		want           float64
	}{{"node", "success", 4}, {"node", "timeout", 1}, {"node", "denied", 7}, {"host", "denied", 1}, {"node", "error", 0}} {
		if got := counter(m, "clawguard_exec_total", "target", c.target, "result", c.result); got != c.want {
			t.Errorf("clawguard_exec_total{target=%q,result=%q} = %v, want %v", c.target, c.result, got, c.want)
		}
	}
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// TestNodeExecOff: without node_exec nothing runs on the node's host, for
// any agent, and DefaultTarget stays the sandbox.
func TestNodeExecOff(t *testing.T) {
	t.Parallel()
	sh := hostShell(t)
	var srv *sidecar.Server
	d := startDaemon(t, `{"instance": "INSTANCE"}`, func(o *sidecar.DaemonOptions) {
		withApprovals(t, strings.Replace(nodeApprovals, "SH", sh, 1))(o)
		o.OnServer = func(s *sidecar.Server) { srv = s }
	})
	code, body := d.do("POST", "/v1/exec", nodeReq("nodeagent", "id", "-u"), agentID)
	if code != 403 || body["code"] != "denied" || !strings.Contains(body["error"].(string), `node execution is off on this sidecar: its config (`+filepath.Join(d.state, wire.FileSidecarConfig)+`) has no "node_exec" block`) {
		t.Fatalf("node exec without node_exec: %d %v", code, body)
	}
	if got := srv.DefaultTarget("nodeagent"); got != sidecar.TargetSandbox {
		t.Fatalf("DefaultTarget without node_exec = %q", got)
	}
	if _, err := srv.Which(t.Context(), "nodeagent", sidecar.TargetNode, "id"); err == nil || !strings.Contains(err.Error(), "node_exec") {
		t.Fatalf("Which on target node without node_exec: %v", err)
	}
	_, err := srv.Exec(t.Context(), sidecar.Identity{Name: "device:n1"}, sidecar.ExecRequest{Agent: "nodeagent", Argv: []string{"id", "-u"}, Target: sidecar.TargetNode, Cwd: "/"}, nil, nil, nil)
	var xe *sidecar.ExecError
	if !errors.As(err, &xe) || !xe.Denied() || !strings.Contains(xe.Reason, "node_exec") {
		t.Fatalf("Exec on target node without node_exec: %v", err)
	}
	if got := counter(d.metrics(), "clawguard_exec_total", "target", "node", "result", "denied"); got != 2 {
		t.Fatalf("clawguard_exec_total{target=node,result=denied} = %v, want 2", got)
	}

	// Under the interim exec_allow list (which node_exec refuses) there is
	// no node runner at all.
	d = startDaemon(t, apiConfig, func(o *sidecar.DaemonOptions) { o.OnServer = func(s *sidecar.Server) { srv = s } })
	if code, body := d.do("POST", "/v1/exec", nodeReq("main", "/bin/echo"), agentID); code != 403 || body["code"] != "node_exec_disabled" {
		t.Fatalf("node exec under exec_allow: %d %v", code, body)
	}
	if _, err := srv.Which(t.Context(), "main", sidecar.TargetNode, "echo"); err == nil || !strings.Contains(err.Error(), "exec_allow") {
		t.Fatalf("Which under exec_allow: %v", err)
	}
}

// TestNodeInProcess: the in-process API takes the path of /v1/exec: the
// policy's decision with asks in the approvals queue (visible on its API,
// answered there), the run, the metrics; refusals are ExecErrors that say
// why, apart from bad requests; DefaultTarget and Which follow node_exec
// and the approvals file.
func TestNodeInProcess(t *testing.T) {
	t.Parallel()
	sh := hostShell(t)
	var srv *sidecar.Server
	d := startDaemon(t, nodeConfig, func(o *sidecar.DaemonOptions) {
		withApprovals(t, strings.Replace(nodeApprovals, "SH", sh, 1))(o)
		o.OnServer = func(s *sidecar.Server) { srv = s }
	})
	ctx := t.Context()
	who := sidecar.Identity{Name: "device:n1", Method: "device"}

	for agent, want := range map[string]string{"nodeagent": "node", "asker": "node", "nonode": "sandbox", "ops": "sandbox", "unknown": "sandbox"} {
		if got := srv.DefaultTarget(agent); got != want {
			t.Errorf("DefaultTarget(%q) = %q, want %q", agent, got, want)
		}
	}
	for _, c := range []struct {
		agent, target, name, want, err string
	}{
		{"nodeagent", "node", "id", "/usr/bin/id", ""},
		{"nodeagent", "node", "sh", sh, ""},
		{"nodeagent", "node", "/usr/bin/sh", sh, ""},
		{"nodeagent", "node", "no-such-program", "", `no-such-program: not found in PATH "/usr/bin:/bin"`},
		{"nodeagent", "node", "./id", "", "bare program name or an absolute path"},
		{"nonode", "node", "id", "", "node is off"},
		{"ops", "host", "id", "", "gateway_host"},
		{"nodeagent", "vm", "id", "", `target: "vm"`},
		{"nodeagent", "sandbox", "echo", "/bin/busybox", ""},
	} {
		got, err := srv.Which(ctx, c.agent, c.target, c.name)
		if got != c.want || (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("Which(%s, %s, %s) = %q, %v; want %q, %q", c.agent, c.target, c.name, got, err, c.want, c.err)
		}
	}

	var out bytes.Buffer
	res, err := srv.Exec(ctx, who, sidecar.ExecRequest{Agent: "nodeagent", Argv: []string{"id", "-u"}, Target: sidecar.TargetNode, Cwd: "/"}, &out, nil, nil)
	if err != nil || res.ExitCode != 0 || res.Decision != "allow" || out.String() != fmt.Sprintf("%d\n", os.Getuid()) {
		t.Fatalf("Exec id -u: %+v %v %q", res, err, out.String())
	}

	// An ask: it waits in the queue, where the approvals API lists it;
	// allowed once there, it runs.
	ask := func(decision string) (sidecar.ExecResponse, string, error) {
		t.Helper()
		ids := make(chan string, 1)
		type result struct {
			res sidecar.ExecResponse
			err error
		}
		done := make(chan result, 1)
		out.Reset()
		go func() {
			res, err := srv.Exec(ctx, who, sidecar.ExecRequest{Agent: "asker", Argv: []string{"uname", "-s"}, Target: sidecar.TargetNode, Cwd: "/"},
				&out, nil, func(id string) { ids <- id })
			done <- result{res, err}
		}()
		var id string
		select {
		case id = <-ids:
		case <-time.After(30 * time.Second):
			t.Fatal("onPending was not called")
		}
		listed := d.pendingAsk()
		if listed["id"] != id || listed["target"] != "node" || listed["resolved"] != "/usr/bin/uname" || listed["identity"] != "device:n1" || listed["cwd"] != "/" {
			t.Fatalf("pending ask %s: %v", id, listed)
		}
		if code, body := d.do("POST", "/v1/approvals/"+id, map[string]any{"decision": decision}, admin); code != 200 {
			t.Fatalf("%s: %d %v", decision, code, body)
		}
		r := <-done
		return r.res, id, r.err
	}
	res, id, err := ask("allow-once")
	if err != nil || res.Decision != "allow-once" || res.ApprovalID != id || out.String() != "Linux\n" {
		t.Fatalf("Exec after allow-once: %+v %v %q", res, err, out.String())
	}
	_, id, err = ask("deny")
	var xe *sidecar.ExecError
	if !errors.As(err, &xe) || !xe.Denied() || xe.Code != "denied" || xe.ApprovalID != id || xe.Decision != "deny" || !strings.Contains(xe.Reason, "denied by user:ann") {
		t.Fatalf("Exec after deny: %#v", err)
	}

	// A refusal says why; a bad request is not a refusal.
	_, err = srv.Exec(ctx, who, sidecar.ExecRequest{Agent: "nonode", Argv: []string{"id"}, Target: sidecar.TargetNode, Cwd: "/"}, nil, nil, nil)
	if !errors.As(err, &xe) || !xe.Denied() || !strings.Contains(xe.Reason, "node is off") || !strings.Contains(err.Error(), "node is off") {
		t.Fatalf("Exec for a node: false agent: %v", err)
	}
	_, err = srv.Exec(ctx, who, sidecar.ExecRequest{Agent: "ops", Argv: []string{"id"}, Target: sidecar.TargetNode, Elevated: true, Cwd: "/"}, nil, nil, nil)
	if !errors.As(err, &xe) || xe.Denied() || xe.Status != 400 || xe.Code != "bad_request" {
		t.Fatalf("Exec elevated on target node: %v", err)
	}

	// A timeout is a result, not an error.
	res, err = srv.Exec(ctx, who, sidecar.ExecRequest{Agent: "nodeagent", Argv: []string{"sleep", "30"}, Target: sidecar.TargetNode, Cwd: "/", TimeoutMS: 300}, nil, nil, nil)
	if err != nil || !res.TimedOut {
		t.Fatalf("Exec past its timeout: %+v %v", res, err)
	}

	m := d.metrics()
	for _, c := range []struct {
		result string
		want   float64
	}{{"success", 2}, {"timeout", 1}, {"denied", 2}} {
		if got := counter(m, "clawguard_exec_total", "target", "node", "result", c.result); got != c.want {
			t.Errorf("clawguard_exec_total{target=node,result=%q} = %v, want %v", c.result, got, c.want)
		}
	}
	if got := counter(m, "clawguard_approval_decisions_total", "decision", "allow-once"); got != 1 {
		t.Errorf("clawguard_approval_decisions_total{decision=allow-once} = %v", got)
	}

	// After shutdown the API refuses cleanly.
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	_, err = srv.Exec(ctx, who, sidecar.ExecRequest{Agent: "nodeagent", Argv: []string{"id", "-u"}, Target: sidecar.TargetNode, Cwd: "/"}, nil, nil, nil)
	if !errors.As(err, &xe) || xe.Code != "shutting_down" || xe.Denied() {
		t.Fatalf("Exec after shutdown: %v", err)
	}
}
