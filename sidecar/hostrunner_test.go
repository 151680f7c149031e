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

// TestHostRunnerRefuses: the host runner runs nothing on a sidecar that is
// not the gateway host's, nor anything without an approvals decision that
// allowed this very request, whatever else sent it.
func TestHostRunnerRefuses(t *testing.T) {
	tr, err := trail.Open(t.TempDir(), trail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := HostConfig{}
	cfg.check()
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
	} {
		h := &hostRunner{enabled: c.enabled, cfg: cfg, trail: tr}
		if _, err := h.Run(c.ctx, c.req, nil, nil); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if rep, _ := trail.Verify(tr.Dir()); rep.Records != 0 {
		t.Fatalf("refused runs were recorded as elevated runs: %d records", rep.Records)
	}
}
