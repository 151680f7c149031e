package approvals

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvaluateNode: target node needs node: true (its own, else "*"'s; an
// agent's own false wins), is judged by the same allow entries and mode on
// the host's filesystem, and is never elevated.
func TestEvaluateNode(t *testing.T) {
	id, err := filepath.EvalSymlinks("/usr/bin/id")
	if err != nil {
		t.Skipf("/usr/bin/id: %v", err)
	}
	p := mustPolicy(t, `{"version": 1, "defaults": {"mode": "allowlist"},
	  "agents": {
	    "*": {"node": true, "allow": [{"path": "`+id+`", "args": "^-u$"}]},
	    "off": {"node": false},
	    "ops": {"elevated": true},
	    "yolo": {"mode": "full"}}}`)
	for _, c := range []struct {
		agent  string
		argv   []string
		target Target
		want   Verdict
		reason string
	}{
		{"main", []string{"id", "-u"}, TargetNode, Allow, "allowed by agents.*.allow[0]"},
		{"main", []string{"id", "-g"}, TargetNode, Deny, "(mode allowlist)"},
		{"off", []string{"id", "-u"}, TargetNode, Deny, `agent "off" may not run commands on this node host: node is off (set agents.off.node to true`},
		// node does not open the gateway host, nor elevated the node.
		{"main", []string{"id", "-u"}, TargetHost, Deny, "elevated is off"},
		{"ops", []string{"id", "-u"}, TargetHost, Allow, ""},
		{"yolo", []string{"sh", "-c", "id"}, TargetNode, Allow, "mode full"},
	} {
		d := p.Evaluate(Request{Agent: c.agent, Argv: c.argv, Target: c.target, Cwd: "/", Path: "/usr/bin:/bin"})
		if d.Verdict != c.want || !strings.Contains(d.Reason, c.reason) {
			t.Errorf("%s %v on %s: %s %q, want %s with %q", c.agent, c.argv, c.target, d.Verdict, d.Reason, c.want, c.reason)
		}
		if c.target == TargetNode && d.Elevated {
			t.Errorf("%s %v: a node command is marked elevated", c.agent, c.argv)
		}
	}
	// The program is judged where it is: sh is a link to dash here.
	sh, _ := filepath.EvalSymlinks("/usr/bin/sh")
	if d := p.Evaluate(Request{Agent: "yolo", Argv: []string{"sh", "-c", "id"}, Target: TargetNode, Cwd: "/", Path: "/usr/bin"}); d.Resolved != sh || d.Exec != sh {
		t.Errorf("sh on the node: resolved %q exec %q, want %q", d.Resolved, d.Exec, sh)
	}
	if err := p.Admits("main", TargetNode); err != nil {
		t.Errorf("Admits(main, node) through \"*\": %v", err)
	}
	if err := p.Admits("off", TargetNode); err == nil || !strings.Contains(err.Error(), "node is off") {
		t.Errorf("Admits(off, node): %v", err)
	}
	if err := p.Admits("main", TargetSandbox); err != nil {
		t.Errorf("Admits(main, sandbox): %v", err)
	}
	// Without any node setting nobody may.
	if err := mustPolicy(t, `{"version": 1}`).Admits("main", TargetNode); err == nil {
		t.Error("node allowed by default")
	}
}

// TestNodeSymlinkTrickery: a link named like an allowed program, in the
// working directory or on a request's own path, is judged as what it
// points to.
func TestNodeSymlinkTrickery(t *testing.T) {
	id, err := filepath.EvalSymlinks("/usr/bin/id")
	if err != nil {
		t.Skipf("/usr/bin/id: %v", err)
	}
	sh, _ := filepath.EvalSymlinks("/usr/bin/sh")
	dir := t.TempDir()
	if err := os.Symlink(sh, filepath.Join(dir, "id")); err != nil {
		t.Fatal(err)
	}
	p := mustPolicy(t, `{"version": 1, "defaults": {"mode": "allowlist"},
	  "agents": {"main": {"node": true, "allow": [{"path": "`+id+`"}]}}}`)
	for _, argv := range [][]string{{"./id"}, {filepath.Join(dir, "id")}} {
		d := p.Evaluate(Request{Agent: "main", Argv: argv, Target: TargetNode, Cwd: dir, Path: "/usr/bin"})
		if d.Verdict != Deny || d.Resolved != sh {
			t.Errorf("%v: %s resolved %q (%s), want deny of %s", argv, d.Verdict, d.Resolved, d.Reason, sh)
		}
	}
}

func TestParseNode(t *testing.T) {
	cfg, err := Parse([]byte(`{"version": 1, "agents": {"*": {"node": true}, "a": {"node": false}}}`))
	if err != nil || cfg.Agents["*"].Node == nil || !*cfg.Agents["*"].Node || *cfg.Agents["a"].Node {
		t.Fatalf("%+v %v", cfg, err)
	}
	if _, err := Parse([]byte(`{"version": 1, "agents": {"a": {"node": "yes"}}}`)); err == nil || !strings.Contains(err.Error(), "agents.a.node") {
		t.Fatalf("node: \"yes\": %v", err)
	}
}
