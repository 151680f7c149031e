package sidecar

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/trail"
)

func TestHostConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"gateway_host": true}`), t.TempDir())
	if err != nil || !cfg.GatewayHost || cfg.Host.Path != sandbox.DefaultPath ||
		time.Duration(cfg.Host.Timeout) != sandbox.DefaultTimeout || cfg.Host.OutputLimitBytes != sandbox.DefaultOutputLimit {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	for _, c := range []struct{ config, want string }{
		{`{"host": {"path": "/usr/bin:bin"}}`, `host.path: "/usr/bin:bin" has the entry "bin"`},
		{`{"host": {"path": "/usr/bin::/bin"}}`, `has the entry ""`},
		{`{"host": {"timeout": "100ms"}}`, "host.timeout: 100ms is out of range"},
		{`{"host": {"timeout": "48h"}}`, "host.timeout: 48h0m0s is out of range"},
		{`{"host": {"output_limit_bytes": -1}}`, "host.output_limit_bytes: -1 is out of range"},
		{`{"host": {"shell": true}}`, `unknown field "shell"`},
		{`{"gateway_host": true, "exec_allow": [{"agent": "a", "path": "/bin/ls", "target": "host"}]}`, "remove exec_allow"},
	} {
		if _, err := ParseConfig([]byte(c.config), t.TempDir()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.config, err, c.want)
		}
	}
}

// TestNodeExecConfig: node_exec is off unless its block is there, takes
// HostConfig's defaults and checks, and combines with gateway_host as a
// second target with its own settings.
func TestNodeExecConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{}`), t.TempDir())
	if err != nil || cfg.NodeExec != nil {
		t.Fatalf("node_exec on by default: %+v %v", cfg.NodeExec, err)
	}
	cfg, err = ParseConfig([]byte(`{"node_exec": {}}`), t.TempDir())
	if err != nil || cfg.NodeExec == nil || cfg.NodeExec.Path != sandbox.DefaultPath ||
		time.Duration(cfg.NodeExec.Timeout) != sandbox.DefaultTimeout || cfg.NodeExec.OutputLimitBytes != sandbox.DefaultOutputLimit || cfg.GatewayHost {
		t.Fatalf("node_exec {}: %+v %v", cfg.NodeExec, err)
	}
	cfg, err = ParseConfig([]byte(`{"gateway_host": true, "host": {"path": "/usr/sbin", "timeout": "5s"}, "node_exec": {"path": "/usr/bin", "output_limit_bytes": 10}}`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	host, node := hostRunners(cfg, nil, nil)
	if !host.enabled || host.target != TargetHost || host.cfg.Path != "/usr/sbin" || time.Duration(host.cfg.Timeout) != 5*time.Second ||
		!node.enabled || node.target != TargetNode || node.cfg.Path != "/usr/bin" || node.cfg.OutputLimitBytes != 10 || time.Duration(node.cfg.Timeout) != sandbox.DefaultTimeout {
		t.Fatalf("both on: host %+v node %+v", host, node)
	}
	for _, c := range []struct{ config, want string }{
		{`{"node_exec": {"path": "/usr/bin:bin"}}`, `node_exec.path: "/usr/bin:bin" has the entry "bin"`},
		{`{"node_exec": {"timeout": "100ms"}}`, "node_exec.timeout: 100ms is out of range"},
		{`{"node_exec": {"output_limit_bytes": 17000000}}`, "node_exec.output_limit_bytes: 17000000 is out of range"},
		{`{"node_exec": {"enabled": true}}`, `unknown field "enabled"`},
		{`{"node_exec": true}`, "node_exec"},
		{`{"node_exec": {}, "exec_allow": [{"agent": "a", "path": "/bin/ls"}]}`, "node_exec: node commands are judged by the approvals policy"},
		{`{"exec_allow": [{"agent": "a", "path": "/bin/ls", "target": "node"}]}`, `exec_allow[0].target: "node"`},
	} {
		if _, err := ParseConfig([]byte(c.config), t.TempDir()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.config, err, c.want)
		}
	}
}

// TestHostRunnerRefuses: the host runner runs nothing on a sidecar that is
// not the gateway host's, nor anything without an approvals decision that
// allowed this very request, whatever else sent it.
func TestHostRunnerRefuses(t *testing.T) {
	tr, err := trail.Open(t.TempDir(), trail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := HostConfig{}
	cfg.check("host")
	req := ExecRequest{Agent: "ops", Argv: []string{"true"}, Target: TargetHost, Elevated: true, Cwd: "/"}
	allowed := Decision{Allow: true, Decision: DecisionAllow, Exec: "/usr/bin/true"}
	for _, c := range []struct {
		name    string
		enabled bool
		ctx     context.Context
		req     ExecRequest
		want    error
	}{
		{"not the gateway host", false, withRun(t.Context(), Identity{Name: "local"}, allowed), req, errHostDisabled},
		{"no decision", true, t.Context(), req, errNotJudged},
		{"a denial", true, withRun(t.Context(), Identity{}, Decision{Exec: "/usr/bin/true"}), req, errNotJudged},
		{"an allow without the judged program (exec_allow)", true, withRun(t.Context(), Identity{}, Decision{Allow: true}), req, errNotJudged},
		{"not elevated", true, withRun(t.Context(), Identity{}, allowed), ExecRequest{Agent: "ops", Argv: []string{"true"}, Target: TargetHost, Cwd: "/"}, errNotJudged},
		{"another target", true, withRun(t.Context(), Identity{}, allowed), ExecRequest{Agent: "ops", Argv: []string{"true"}, Target: TargetNode, Cwd: "/"}, errNotJudged},
		{"a relative cwd", true, withRun(t.Context(), Identity{}, allowed), ExecRequest{Agent: "ops", Argv: []string{"true"}, Target: TargetHost, Elevated: true, Cwd: "tmp"}, errNotJudged},
	} {
		h := &hostRunner{target: TargetHost, enabled: c.enabled, cfg: cfg, trail: tr}
		if _, err := h.Run(c.ctx, c.req, nil, nil); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// The node runner: off without node_exec, and never for an elevated
	// request or one for the gateway host.
	node := ExecRequest{Agent: "ops", Argv: []string{"true"}, Target: TargetNode, Cwd: "/"}
	for _, c := range []struct {
		name    string
		enabled bool
		req     ExecRequest
		want    error
	}{
		{"node_exec off", false, node, errNodeDisabled},
		{"elevated", true, ExecRequest{Agent: "ops", Argv: []string{"true"}, Target: TargetNode, Elevated: true, Cwd: "/"}, errNotJudged},
		{"a host request", true, req, errNotJudged},
	} {
		h := &hostRunner{target: TargetNode, enabled: c.enabled, cfg: cfg, trail: tr}
		if _, err := h.Run(withRun(t.Context(), Identity{Name: "local"}, allowed), c.req, nil, nil); !errors.Is(err, c.want) {
			t.Errorf("node: %s: %v, want %v", c.name, err, c.want)
		}
	}
	if rep, _ := trail.Verify(tr.Dir()); rep.Records != 0 {
		t.Fatalf("refused runs were recorded as elevated runs: %d records", rep.Records)
	}
}
