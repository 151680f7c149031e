package sidecar

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/wire"
)

func TestConfigDefaults(t *testing.T) {
	state := t.TempDir()
	cfg, err := LoadConfig(filepath.Join(state, wire.FileSidecarConfig), state) // missing file: defaults
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Version != 1 || len(cfg.AllowedUIDs) != 1 || cfg.AllowedUIDs[0] != uint32(os.Getuid()) ||
		cfg.WorkspaceRoot != filepath.Join(state, "workspaces") || !strings.HasPrefix(cfg.Instance, "cg") ||
		time.Duration(cfg.PruneInterval) != 30*time.Second || cfg.MaxSandboxes != sandbox.DefaultMaxSandboxes || len(cfg.ExecAllow) != 0 || len(cfg.Sandboxes) != 0 {
		t.Fatalf("defaults: %+v", cfg)
	}
	other, _ := ParseConfig([]byte(`{}`), t.TempDir())
	if other.Instance == cfg.Instance {
		t.Fatal("two state dirs share an instance label")
	}
	// The default policy denies everything.
	d, _ := Allowlist(cfg.ExecAllow).Decide(t.Context(), ExecRequest{Agent: "a", Argv: []string{"/bin/true"}, Target: TargetSandbox}, Identity{})
	if d.Allow || d.Decision != DecisionDeny {
		t.Fatalf("default policy: %+v", d)
	}
}

func TestConfigErrors(t *testing.T) {
	state := t.TempDir()
	cases := []struct{ json, want string }{
		{`{"version": 2}`, "version: 2 is not supported"},
		{`{"verison": 1}`, `unknown field "verison"`},
		{"{\n  \"version\": \"1\"\n}", "line 2, column"},
		{`{"exec_allow": [{"agent": "*", "path": "ls"}]}`, "exec_allow[0].path"},
		{`{"exec_allow": [{"agent": "a b", "path": "/bin/ls"}]}`, "exec_allow[0].agent"},
		{`{"exec_allow": [{"agent": "*", "path": "/bin/ls", "target": "vm"}]}`, "exec_allow[0].target"},
		{`{"sandboxes": {"main": {"image": "i", "cap_add": ["SYS_ADMIN"]}}}`, `sandbox profile "main": json: unknown field "cap_add"`},
		{`{"sandboxes": {"main": {"image": "i", "network": "host"}}}`, `sandbox profile "main": network: "host" is refused`},
		{`{"sandboxes": {"main": {"image": "i", "network": "container:db"}}}`, `sandbox profile "main": network:`},
		{`{"sandboxes": {"main": {"image": "i", "privileged": true}}}`, `sandbox profile "main": privileged:`},
		{`{"sandboxes": {"main": {"image": "i", "mounts": [{"source": "/var/run/docker.sock", "target": "/d"}]}}}`, `sandbox profile "main": mounts[0].source:`},
		{`{"sandboxes": {"main": {"image": "i", "mounts": [{"source": "/etc", "target": "/d"}]}}}`, `sandbox profile "main": mounts[0].source:`},
		{`{"sandboxes": {"w": {"image": "i", "workspace": "rw", "workspace_dir": "/home"}}}`, `sandbox profile "w": workspace_dir:`},
		{`{"sandboxes": {"main": {"image": "i", "timeout": 30}}}`, `sandbox profile "main": json: cannot unmarshal 30 (want a duration string like "30s") into Go struct field Profile.timeout`},
		{`{"workspace_root": "/"}`, "workspace_root"},
		{`{"workspace_root": "` + state + `"}`, "workspace_root"},
		{`{"instance": "../x"}`, "instance:"},
		{`{"prune_interval": "1ms"}`, "prune_interval"},
		{`{"max_sandboxes": -1}`, "max_sandboxes"},
		{`{"identity_keys": {"gate": ""}}`, "identity_keys"},
		{`{} {}`, "trailing data"},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(c.json), state)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n  got  %v\n  want %q", c.json, err, c.want)
		}
	}
}

func TestConfigFileChecks(t *testing.T) {
	state := t.TempDir()
	file := filepath.Join(state, wire.FileSidecarConfig)
	os.WriteFile(file, []byte(`{"sandboxes": {"*": {"image": "img", "scope": "agent"}}}`), 0o600)
	cfg, err := LoadConfig(file, state)
	if err != nil || cfg.Sandboxes["*"].Scope != sandbox.ScopeAgent || cfg.Sandboxes["*"].PidsLimit != sandbox.DefaultPidsLimit {
		t.Fatalf("load: %+v %v", cfg, err)
	}
	os.Chmod(file, 0o666)
	if _, err := LoadConfig(file, state); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("world-writable config accepted: %v", err)
	}
	os.Chmod(file, 0o600)
	os.WriteFile(file, []byte(`{"sandboxes": {"*": {"image": "img", "network": "host"}}}`), 0o600)
	if _, err := LoadConfig(file, state); err == nil || !strings.HasPrefix(err.Error(), "config "+file+`: sandbox profile "*": network:`) {
		t.Fatalf("error does not name file, profile and field: %v", err)
	}
}

func TestParseExecRequest(t *testing.T) {
	req, err := ParseExecRequest([]byte(`{"agent":"main","argv":["/bin/ls","-l"],"timeout_ms":500}`))
	if err != nil || req.Target != TargetSandbox || req.TimeoutMS != 500 {
		t.Fatalf("%+v %v", req, err)
	}
	for _, bad := range []string{
		`{"argv":["ls"]}`,
		`{"agent":"main"}`,
		`{"agent":"main","argv":[]}`,
		`{"agent":"main","argv":[""]}`,
		`{"agent":"main","argv":["a\u0000b"]}`,
		`{"agent":"../etc","argv":["ls"]}`,
		`{"agent":"main","session":"a/b","argv":["ls"]}`,
		`{"agent":"main","argv":["ls"],"target":"vm"}`,
		`{"agent":"main","argv":["ls"],"elevated":true}`,
		`{"agent":"main","argv":["ls"],"timeout_ms":-1}`,
		`{"agent":"main","argv":["ls"],"shell":true}`,
		`{"agent":"main","argv":"ls"}`,
		`{"agent":"main","argv":["ls"]}x`,
	} {
		if _, err := ParseExecRequest([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzParseExecRequest(f *testing.F) {
	for _, s := range []string{
		`{"agent":"main","argv":["/bin/ls"]}`,
		`{"agent":"main","session":"s1","argv":["sh","-c","x"],"cwd":"sub","env":{"A":"b"},"timeout_ms":10,"target":"host","elevated":true}`,
		`{"agent":"","argv":null}`, `[]`, `{"agent":"a","argv":["\ud800"]}`,
		`{"agent":"main","argv":["id"],"cwd":"/","target":"node"}`, `{"agent":"main","argv":["id"],"target":"node","elevated":true}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseExecRequest(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "request: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if !sandbox.ValidName(req.Agent) || len(req.Argv) == 0 || req.Argv[0] == "" ||
			(req.Target != TargetSandbox && req.Target != TargetHost && req.Target != TargetNode) || (req.Elevated && req.Target != TargetHost) {
			t.Fatalf("accepted invalid request %+v", req)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"version":1,"allowed_uids":[0,1000],"exec_allow":[{"agent":"*","path":"/bin/ls"}]}`,
		`{"sandboxes":{"*":{"image":"img","workspace":"rw","mounts":[{"source":"/tmp/x","target":"/x"}]}}}`,
		`{"sandboxes":{"a":{"image":"img","network":"host"}}}`, `{"prune_interval":"5s","identity_keys":{"g":"k"}}`,
		`{"gateway_host":true,"host":{"path":"/usr/bin"},"node_exec":{"path":"/usr/bin:/bin","timeout":"5s","output_limit_bytes":10}}`,
		`{"node_exec":{}}`, `{"node_exec":null}`, `{"node_exec":{"path":"bin"}}`,
		`{"node_exec":{},"exec_allow":[{"agent":"*","path":"/bin/ls"}]}`,
	} {
		f.Add([]byte(s))
	}
	state := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, state)
		if err != nil {
			return
		}
		for key, h := range map[string]*HostConfig{"host": &cfg.Host, "node_exec": cfg.NodeExec} {
			if h == nil {
				continue
			}
			if d := time.Duration(h.Timeout); d < time.Second || d > 24*time.Hour || h.OutputLimitBytes < 1 || h.OutputLimitBytes > sandbox.MaxOutputLimit {
				t.Fatalf("accepted %s limits out of range: %+v", key, h)
			}
			for _, d := range strings.Split(h.Path, ":") {
				if !strings.HasPrefix(d, "/") {
					t.Fatalf("accepted %s.path %q", key, h.Path)
				}
			}
		}
		if cfg.NodeExec != nil && len(cfg.ExecAllow) > 0 {
			t.Fatal("accepted node_exec with exec_allow")
		}
		for name, p := range cfg.Sandboxes {
			if p.Privileged || p.Network == "host" || strings.HasPrefix(p.Network, "container:") || p.PidsLimit <= 0 || p.User == "" {
				t.Fatalf("accepted unsafe profile %q: %+v", name, p)
			}
		}
	})
}

func TestListenRefusals(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-socket")
	os.WriteFile(file, nil, 0o600)
	if _, err := Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
	if _, err := Listen(filepath.Join(dir, strings.Repeat("s", 120))); err == nil || !strings.Contains(err.Error(), "unix sockets allow") {
		t.Fatalf("long path: %v", err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "another sidecar") {
		t.Fatalf("live socket taken over: %v", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // a crash leaves the file behind
	l, err = Listen(sock)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l.Close()
}
