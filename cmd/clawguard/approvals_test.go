package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/sandbox/sandboxtest"
)

// checkOut decodes `approvals check` output and insists on exactly the four
// documented keys.
func checkOut(t *testing.T, r cliResult) map[string]any {
	t.Helper()
	if strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("output is not one line: %q (exit %d, stderr %q)", r.stdout, r.code, r.stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	// The exit status tells the decision apart: 0 allow, 3 ask, 4 deny.
	if want := map[any]int{"allow": 0, "ask": 3, "deny": 4}[m["decision"]]; r.code != want {
		t.Fatalf("decision %v exited %d, want %d", m["decision"], r.code, want)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, []string{"decision", "reason", "resolved", "rule"}) {
		t.Fatalf("keys %v in %s", keys, r.stdout)
	}
	return m
}

func writeApprovals(t *testing.T, js string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "approvals.json")
	if err := os.WriteFile(p, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApprovalsCheckHost(t *testing.T) {
	ls, err := filepath.EvalSymlinks("/usr/bin/ls")
	if err != nil {
		t.Skip("no /usr/bin/ls on this machine")
	}
	file := writeApprovals(t, `{"version":1,"agents":{
		"ops":{"mode":"allowlist","elevated":true,"allow":[{"path":"`+ls+`","args":"^-l( .*)?$"}]},
		"main":{"allow":[{"path":"`+ls+`"}]}}}`)
	base := []string{"approvals", "check", "--file", file, "--target", "host", "--path", "/usr/bin:/bin", "--cwd", "/"}
	m := checkOut(t, runCLI(nil, nil, append(base, "--agent", "ops", "--", "env", "LANG=C", "ls", "-l", "/tmp")...))
	if m["decision"] != "allow" || m["resolved"] != ls || m["rule"] != "agents.ops.allow[0]" {
		t.Fatalf("%v", m)
	}
	m = checkOut(t, runCLI(nil, nil, append(base, "--agent", "ops", "--", "ls", "-la")...))
	if m["decision"] != "deny" || m["rule"] != nil || !strings.Contains(m["reason"].(string), "does not match agents.ops.allow[0]") {
		t.Fatalf("%v", m)
	}
	// main is not elevated: host exec is refused however the allowlist reads.
	m = checkOut(t, runCLI(nil, nil, append(base, "--agent", "main", "--", "ls")...))
	if m["decision"] != "deny" || !strings.Contains(m["reason"].(string), "elevated is off") {
		t.Fatalf("%v", m)
	}
	// Request env is part of the evaluation.
	m = checkOut(t, runCLI(nil, nil, append(base, "--agent", "ops", "--env", "LD_PRELOAD=/tmp/x.so", "--", "ls", "-l")...))
	if m["decision"] != "deny" || !strings.Contains(m["reason"].(string), "LD_PRELOAD") {
		t.Fatalf("%v", m)
	}
}

func TestApprovalsCheckSandboxRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "workspace"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for _, b := range []string{"rm", "env", "bash"} {
		os.WriteFile(filepath.Join(root, "usr/bin", b), []byte("x"), 0o755)
	}
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	os.Symlink("/usr/bin/rm", filepath.Join(root, "workspace", "ls")) // a trap inside the sandbox
	file := writeApprovals(t, `{"version":1,"agents":{"main":{"allow":[{"path":"/usr/bin/bash"}]}}}`)
	base := []string{"approvals", "check", "--file", file, "--agent", "main", "--root", root}

	m := checkOut(t, runCLI(nil, nil, append(base, "--", "env", "FOO=1", "rm", "-rf", "/")...))
	if m["decision"] != "ask" || m["resolved"] != "/usr/bin/rm" {
		t.Fatalf("%v", m)
	}
	m = checkOut(t, runCLI(nil, nil, append(base, "--", "./ls")...))
	if m["decision"] != "ask" || m["resolved"] != "/usr/bin/rm" {
		t.Fatalf("./ls in /workspace: %v", m)
	}
	m = checkOut(t, runCLI(nil, nil, append(base, "--", "/bin/bash", "-c", "id")...))
	if m["decision"] != "ask" || m["resolved"] != "/usr/bin/bash" || !strings.Contains(m["reason"].(string), "inline code") {
		t.Fatalf("bash -c: %v", m)
	}
	m = checkOut(t, runCLI(nil, nil, append(base, "--", "bash", "build.sh")...))
	if m["decision"] != "allow" || m["rule"] != "agents.main.allow[0]" {
		t.Fatalf("bash script: %v", m)
	}
}

// TestApprovalsCheckNode: --target node judges as the node's sidecar does:
// argv[0] looked up in node_exec.path of its sidecar.json (links
// resolved), the agent needing node: true.
func TestApprovalsCheckNode(t *testing.T) {
	id, err := filepath.EvalSymlinks("/usr/bin/id")
	if err != nil {
		t.Skip("no /usr/bin/id on this machine")
	}
	sh, err := filepath.EvalSymlinks("/usr/bin/sh")
	if err != nil {
		t.Skip("no /usr/bin/sh on this machine")
	}
	state := t.TempDir()
	file := writeApprovals(t, `{"version":1,"defaults":{"mode":"allowlist"},"agents":{
		"node":{"node":true,"allow":[{"path":"`+id+`","args":"^-u$"}]},
		"off":{"allow":[{"path":"`+id+`"}]}}}`)
	base := []string{"approvals", "check", "--state-dir", state, "--file", file, "--target", "node", "--cwd", "/"}
	// No sidecar.json: node_exec's default path, and a note that the
	// sidecar refuses target node.
	r := runCLI(nil, nil, append(base, "--agent", "node", "--", "id", "-u")...)
	if m := checkOut(t, r); m["decision"] != "allow" || m["resolved"] != id || !strings.Contains(r.stderr, `has no "node_exec" block`) {
		t.Fatalf("without sidecar.json: %v %q", m, r.stderr)
	}
	if m := checkOut(t, runCLI(nil, nil, append(base, "--agent", "off", "--", "id", "-u")...)); m["decision"] != "deny" || !strings.Contains(m["reason"].(string), "node is off") {
		t.Fatalf("node: false agent: %v", m)
	}
	// node_exec.path first names a directory where "id" is a shell.
	shadow := t.TempDir()
	if err := os.Symlink(sh, filepath.Join(shadow, "id")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "sidecar.json"), []byte(`{"node_exec": {"path": "`+shadow+`:/usr/bin"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(nil, nil, append(base, "--agent", "node", "--", "id", "-u")...)
	if m := checkOut(t, r); m["decision"] != "deny" || m["resolved"] != sh || r.stderr != "" {
		t.Fatalf("node_exec.path with a shadowing link: %v %q", m, r.stderr)
	}
	if m := checkOut(t, runCLI(nil, nil, append(base, "--agent", "node", "--path", "/usr/bin", "--", "id", "-u")...)); m["decision"] != "allow" {
		t.Fatalf("--path over node_exec.path: %v", m)
	}
	os.WriteFile(filepath.Join(state, "sidecar.json"), []byte(`{"node_exec": {"path": "bin"}}`), 0o600)
	wantCode(t, runCLI(nil, nil, append(base, "--agent", "node", "--", "id")...), 1, "node_exec.path")
}

func TestApprovalsCheckDefaultsAndErrors(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	// No file: every command asks.
	m := checkOut(t, runCLI(nil, nil, "approvals", "check", "--state-dir", state, "--agent", "a", "--root", "/", "--", "/usr/bin/env"))
	if m["decision"] != "ask" {
		t.Fatalf("%v", m)
	}
	wantCode(t, runCLI(nil, nil, "approvals", "check", "--agent", "a", "--", "ls"), 2, "--root")
	wantCode(t, runCLI(nil, nil, "approvals", "check", "--root", "/", "--", "ls"), 2, "--agent is required")
	wantCode(t, runCLI(nil, nil, "approvals", "check", "--agent", "a", "--root", "/"), 2, "no command")
	wantCode(t, runCLI(nil, nil, "approvals", "check", "--agent", "a", "--target", "moon", "--", "ls"), 2, "not sandbox, host or node")
	if r := runCLI(nil, nil, "approvals", "check", "--agent", "a", "--env", "NOEQUALS", "--", "ls"); r.code == 0 || !strings.Contains(r.stderr, "is not NAME=VALUE") {
		t.Fatalf("bad --env: %+v", r)
	}
	wantCode(t, runCLI(nil, nil, "approvals", "nope"), 2, "unknown subcommand")
	wantCode(t, runCLI(nil, nil, "approvals", "--help"), 0)

	bad := writeApprovals(t, `{"version":1,"agents":{"main":{"allow":[{"path":"/a"},{"path":"/b"},{"path":"/c","args":"(x"}]}}}`)
	wantCode(t, runCLI(nil, nil, "approvals", "check", "--file", bad, "--agent", "main", "--root", "/", "--", "ls"), 1,
		"agents.main.allow[2].args: bad regex")
}

// TestApprovalsCheckImage: --image judges a sandbox command against a local
// Docker image the way the sidecar does (programs resolved in the image
// through the engine, run-time mounts unknown), the exit status tells
// allow, ask and deny apart, a busybox applet's reason says what entry
// would match, and the lookup container is removed.
func TestApprovalsCheckImage(t *testing.T) {
	dcli := sandboxtest.Client(t)
	img := sandboxtest.TestImage(t, dcli)
	file := writeApprovals(t, `{"version":1,"agents":{
		"main":{"mode":"ask","allow":[{"path":"/bin/busybox","args":"^echo( .*)?$"}]},
		"strict":{"mode":"allowlist"}}}`)
	check := func(agent string, argv ...string) cliResult {
		return runCLI(nil, nil, append([]string{"approvals", "check", "--file", file, "--agent", agent, "--image", img, "--"}, argv...)...)
	}
	r := check("main", "echo", "hi")
	m := checkOut(t, r)
	if r.code != 0 || m["decision"] != "allow" || m["resolved"] != "/bin/busybox" || m["rule"] != "agents.main.allow[0]" {
		t.Fatalf("echo hi: %d %v", r.code, m)
	}
	r = check("main", "/bin/ls", "-la")
	m = checkOut(t, r)
	reason, _ := m["reason"].(string)
	if r.code != 3 || m["decision"] != "ask" || m["resolved"] != "/bin/busybox" ||
		!strings.Contains(reason, `/bin/ls runs the multi-call binary /bin/busybox`) ||
		!strings.Contains(reason, `names "path": "/bin/busybox" with an "args" pattern over "ls -la"`) ||
		!strings.Contains(reason, `"args": "^ls -la$"`) {
		t.Fatalf("/bin/ls -la: %d %v", r.code, m)
	}
	r = check("strict", "ls")
	m = checkOut(t, r)
	if r.code != 4 || m["decision"] != "deny" || !strings.Contains(m["reason"].(string), "multi-call binary /bin/busybox") {
		t.Fatalf("strict ls: %d %v", r.code, m)
	}
	// /tmp is a tmpfs at run time: what is there cannot be judged from the
	// image, exactly as in the sidecar.
	m = checkOut(t, check("strict", "/tmp/tool"))
	if !strings.Contains(m["reason"].(string), "cannot resolve the program") {
		t.Fatalf("/tmp/tool: %v", m)
	}
	wantCode(t, check("main", "no-such-program"), 4) // cannot be resolved: denied, as in the sidecar
	wantCode(t, runCLI(nil, nil, "approvals", "check", "--file", file, "--agent", "main", "--image", "clawguard-no-such-image:0", "--", "ls"), 1, "clawguard-no-such-image:0")
	wantCode(t, runCLI(nil, nil, "approvals", "check", "--file", file, "--agent", "main", "--image", img, "--root", "/", "--", "ls"), 2, "not both")
	wantCode(t, runCLI(nil, nil, "approvals", "check", "--file", file, "--agent", "main", "--target", "host", "--image", img, "--", "ls"), 2, "sandbox only")
	if left := sandboxtest.Containers(t, dcli, fmt.Sprintf("cgcheck%d", os.Getpid())); len(left) != 0 {
		t.Fatalf("lookup containers left behind: %v", left)
	}
	if r := runCLI(nil, nil, "approvals", "--help"); !strings.Contains(r.stdout, "0 allow, 3 ask, 4 deny") || !strings.Contains(r.stdout, "--image") {
		t.Fatalf("approvals --help does not document the exit status and --image:\n%s", r.stdout)
	}
}
