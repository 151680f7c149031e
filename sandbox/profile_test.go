package sandbox

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckProfileDefaults(t *testing.T) {
	root := t.TempDir()
	p, err := CheckProfile("*", Profile{Image: "img:1"}, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{
		Image: "img:1", User: DefaultUser, CPUs: 1, MemoryMB: 512, PidsLimit: 256, TmpMB: 64,
		Timeout: Duration(time.Minute), IdleTimeout: Duration(15 * time.Minute), MaxAge: Duration(24 * time.Hour),
		OutputLimitBytes: 1 << 20, Network: "none", Workspace: "none", Scope: ScopeSession, Path: DefaultPath,
		Exec: ExecAgent,
	}
	if p.Image != want.Image || p.User != want.User || p.CPUs != want.CPUs || p.MemoryMB != want.MemoryMB ||
		p.SwapMB != 0 || p.PidsLimit != want.PidsLimit || p.TmpMB != want.TmpMB || p.Timeout != want.Timeout ||
		p.IdleTimeout != want.IdleTimeout || p.MaxAge != want.MaxAge || p.OutputLimitBytes != want.OutputLimitBytes ||
		p.Network != want.Network || p.Workspace != want.Workspace || p.Scope != want.Scope || p.Path != want.Path ||
		p.Exec != want.Exec || p.IdleCommand != nil {
		t.Fatalf("defaults:\n got %+v\nwant %+v", p, want)
	}
	// The docker exec path idles in sleep infinity.
	p, err = CheckProfile("*", Profile{Image: "img:1", Exec: ExecDocker}, root, nil)
	if err != nil || strings.Join(p.IdleCommand, " ") != "sleep infinity" {
		t.Fatalf("exec docker: %+v %v", p, err)
	}
	// A bare UID gets the same GID, so the image cannot choose group root.
	p, err = CheckProfile("a", Profile{Image: "img", User: "1000"}, root, nil)
	if err != nil || p.User != "1000:1000" {
		t.Fatalf("user 1000: %q, %v", p.User, err)
	}
}

// TestCheckProfileRefusals tries every way a profile could weaken the sandbox
// or reach host files; each must fail at load naming the profile and field.
func TestCheckProfileRefusals(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "workspaces")
	state := base // the state dir holds the vault and contains the root
	if err := os.MkdirAll(filepath.Join(root, "agent1"), 0o700); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	// A symlink inside the root that leads out of it.
	if err := os.Symlink(outside, filepath.Join(root, "link-out")); err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	cases := []struct {
		name, field string
		p           Profile
	}{
		{"privileged", "privileged", Profile{Privileged: true}},
		{"no image", "image", Profile{Image: ""}},
		{"image flag injection", "image", Profile{Image: "--privileged"}},
		{"network host", "network", Profile{Network: "host"}},
		{"network container", "network", Profile{Network: "container:abc"}},
		{"network garbage", "network", Profile{Network: "a b"}},
		{"user root name", "user", Profile{User: "root"}},
		{"user uid 0", "user", Profile{User: "0"}},
		{"user uid 0 with gid", "user", Profile{User: "0:1000"}},
		{"user gid 0", "user", Profile{User: "1000:0"}},
		{"user name", "user", Profile{User: "nobody"}},
		{"pids unlimited", "pids_limit", Profile{PidsLimit: -1}},
		{"memory too small", "memory_mb", Profile{MemoryMB: 1}},
		{"swap unlimited", "swap_mb", Profile{SwapMB: -1}},
		{"cpus negative", "cpus", Profile{CPUs: -1}},
		{"timeout tiny", "timeout", Profile{Timeout: Duration(time.Millisecond)}},
		{"output huge", "output_limit_bytes", Profile{OutputLimitBytes: MaxOutputLimit + 1}},
		{"workspace mode", "workspace", Profile{Workspace: "readwrite"}},
		{"scope", "scope", Profile{Scope: "global"}},
		{"pool for agent scope", "pool_size", Profile{Scope: ScopeAgent, PoolSize: 1}},
		{"pool too big", "pool_size", Profile{PoolSize: MaxPoolSize + 1}},
		{"env PATH", "env", Profile{Env: map[string]string{"PATH": "/tmp"}}},
		{"env LD_PRELOAD", "env", Profile{Env: map[string]string{"LD_PRELOAD": "/x.so"}}},
		{"secret twice", "secrets", Profile{Env: map[string]string{"T": "1"}, Secrets: map[string]string{"T": "t"}}},
		{"workspace_dir without workspace", "workspace_dir", Profile{WorkspaceDir: filepath.Join(root, "agent1")}},
		{"workspace outside root", "workspace_dir", Profile{Workspace: "rw", WorkspaceDir: outside}},
		{"workspace dotdot", "workspace_dir", Profile{Workspace: "rw", WorkspaceDir: root + "/../../etc"}},
		{"workspace symlink out", "workspace_dir", Profile{Workspace: "rw", WorkspaceDir: filepath.Join(root, "link-out", "x")}},
		{"workspace relative", "workspace_dir", Profile{Workspace: "rw", WorkspaceDir: "agent1"}},
		{"bind docker socket", "mounts[0].source", Profile{Mounts: []Mount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}}},
		{"bind /run", "mounts[0].source", Profile{Mounts: []Mount{{Source: "/run", Target: "/x"}}}},
		{"bind /proc", "mounts[0].source", Profile{Mounts: []Mount{{Source: "/proc", Target: "/x"}}}},
		{"bind /sys", "mounts[0].source", Profile{Mounts: []Mount{{Source: "/sys/fs/cgroup", Target: "/x"}}}},
		{"bind /etc", "mounts[0].source", Profile{Mounts: []Mount{{Source: "/etc", Target: "/x"}}}},
		{"bind /", "mounts[0].source", Profile{Mounts: []Mount{{Source: "/", Target: "/host"}}}},
		{"bind ssh", "mounts[0].source", Profile{Mounts: []Mount{{Source: filepath.Join(home, ".ssh"), Target: "/x"}}}},
		{"bind aws", "mounts[0].source", Profile{Mounts: []Mount{{Source: filepath.Join(home, ".aws"), Target: "/x"}}}},
		{"bind home", "mounts[0].source", Profile{Mounts: []Mount{{Source: home, Target: "/x"}}}},
		{"bind state dir", "mounts[0].source", Profile{Mounts: []Mount{{Source: state, Target: "/x"}}}},
		{"bind outside root", "mounts[0].source", Profile{Mounts: []Mount{{Source: outside, Target: "/x"}}}},
		{"mount over /proc", "mounts[0].target", Profile{Mounts: []Mount{{Source: filepath.Join(root, "agent1"), Target: "/proc/self"}}}},
		{"mount over workspace", "mounts[0].target", Profile{Mounts: []Mount{{Source: filepath.Join(root, "agent1"), Target: "/workspace"}}}},
		{"mount target relative", "mounts[0].target", Profile{Mounts: []Mount{{Source: filepath.Join(root, "agent1"), Target: "x"}}}},
		{"mount over the agent", "mounts[0].target", Profile{Mounts: []Mount{{Source: filepath.Join(root, "agent1"), Target: agentDir}}}},
		{"mount into the agent dir", "mounts[0].target", Profile{Mounts: []Mount{{Source: filepath.Join(root, "agent1"), Target: AgentPath}}}},
		{"exec mode", "exec", Profile{Exec: "ssh"}},
		{"exec mode case", "exec", Profile{Exec: "Agent"}},
		{"idle command with the agent", "idle_command", Profile{IdleCommand: []string{"sleep", "9"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.p
			if p.Image == "" && c.field != "image" {
				p.Image = "img:1"
			}
			_, err := CheckProfile("main", p, root, []string{state})
			var pe *ProfileError
			if !errors.As(err, &pe) {
				t.Fatalf("accepted (err %v)", err)
			}
			if pe.Profile != "main" || pe.Field != c.field {
				t.Fatalf("error names %q/%q, want main/%s: %v", pe.Profile, pe.Field, c.field, err)
			}
			if !strings.Contains(err.Error(), `sandbox profile "main": `+c.field+": ") {
				t.Fatalf("message does not lead with profile and field: %v", err)
			}
		})
	}
	// And what is fine stays fine.
	ok := Profile{Image: "img", Workspace: "ro", WorkspaceDir: filepath.Join(root, "agent1"), Network: "bridge",
		Mounts: []Mount{{Source: filepath.Join(root, "cache"), Target: "/cache", ReadOnly: true}}}
	if _, err := CheckProfile("main", ok, root, []string{state}); err != nil {
		t.Fatalf("valid profile refused: %v", err)
	}
}

func TestCheckWorkspaceRoot(t *testing.T) {
	state := t.TempDir()
	home, _ := os.UserHomeDir()
	for _, bad := range []string{"relative", "/", "/etc", "/proc/1", "/var/run", home, filepath.Join(home, ".docker", "x"), filepath.Dir(state)} {
		if err := CheckWorkspaceRoot(bad, []string{state}); err == nil {
			t.Errorf("workspace_root %q accepted", bad)
		}
	}
	if err := CheckWorkspaceRoot(filepath.Join(state, "workspaces"), []string{state}); err != nil {
		t.Errorf("workspace_root inside the state dir refused: %v", err)
	}
}

func TestSpecHash(t *testing.T) {
	root := t.TempDir()
	p, _ := CheckProfile("*", Profile{Image: "img", Workspace: "rw"}, root, nil)
	a, b := newSpec("*", "a", p, root), newSpec("*", "b", p, root)
	if a.hash == b.hash || a.ws != filepath.Join(root, "a") {
		t.Fatalf("per-agent workspace not in the hash: %s %s %s", a.hash, b.hash, a.ws)
	}
	p2 := p
	p2.Timeout = Duration(time.Second) // exec-time: no new container
	if newSpec("*", "a", p2, root).hash != a.hash {
		t.Fatal("timeout changed the container hash")
	}
	p2.MemoryMB = 1024
	if newSpec("*", "a", p2, root).hash == a.hash {
		t.Fatal("memory change did not change the hash")
	}
	p3 := p
	p3.Exec = ExecDocker
	if newSpec("*", "a", p3, root).hash == a.hash {
		t.Fatal("exec mode change did not change the hash")
	}
	p.Scope = ScopeShared
	s1, s2 := newSpec("*", "a", p, root), newSpec("*", "b", p, root)
	if s1.hash != s2.hash || s1.ws != filepath.Join(root, "_shared.default") {
		t.Fatalf("shared spec differs per agent: %s %s %s", s1.hash, s2.hash, s1.ws)
	}
}

func TestCapWriter(t *testing.T) {
	var sb strings.Builder
	c := &capWriter{w: &sb, left: 5}
	for _, s := range []string{"ab", "cd", "efg", "h"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("write %q: %d %v", s, n, err)
		}
	}
	if sb.String() != "abcde" || !c.truncated {
		t.Fatalf("got %q truncated=%v", sb.String(), c.truncated)
	}
	c = &capWriter{w: &sb, left: 5}
	c.Write([]byte("12345"))
	if c.truncated {
		t.Fatal("exactly the limit reported as truncated")
	}
}

func TestExecCwd(t *testing.T) {
	for in, want := range map[string]string{"": "/workspace", "sub/dir": "/workspace/sub/dir", "/workspace/a/../b": "/workspace/b", "./": "/workspace"} {
		if got, err := execCwd(in); err != nil || got != want {
			t.Errorf("cwd %q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"..", "../etc", "/etc", "/workspace/../etc", "/workspacex", "a\x00b"} {
		if got, err := execCwd(bad); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("cwd %q accepted as %q", bad, got)
		}
	}
}

// FuzzExecCwd: whatever the request says, the working directory stays
// inside /workspace.
func FuzzExecCwd(f *testing.F) {
	for _, s := range []string{"", "..", "a/../../b", "/workspace/../../", "//workspace", "/workspace/./x/..", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := execCwd(s)
		if err != nil {
			return
		}
		if got != path.Clean(got) || !within(got, WorkspacePath) {
			t.Fatalf("cwd %q became %q", s, got)
		}
	})
}

// TestCheckAgent: only a static program that nobody but its owner (root or
// the sidecar's user) can change, and that everyone can execute, is mounted.
func TestCheckAgent(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable() // a test binary: static or not, it is an ELF file
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(self)
	for name, c := range map[string]struct {
		mode os.FileMode
		data []byte
		want string
	}{
		"not ELF":        {0o755, []byte("#!/bin/sh\n"), "no clawguard-agent binary"},
		"group-writable": {0o775, data, "writable by group or others"},
		"not executable": {0o700, data, "must be able to execute it"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		os.WriteFile(p, c.data, 0o600)
		os.Chmod(p, c.mode)
		if _, err := CheckAgent(p); !errors.Is(err, ErrNoAgent) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	if _, err := os.Stat("/bin/ls"); err == nil {
		if _, err := CheckAgent("/bin/ls"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
			t.Errorf("/bin/ls: %v", err)
		}
	}
	if _, err := CheckAgent(filepath.Join(dir, "missing")); !errors.Is(err, ErrNoAgent) {
		t.Errorf("missing: %v", err)
	}
}
