package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
)

// env is one test's Docker client, image, instance and directories.
type env struct {
	cli   *client.Client
	image string
	inst  string
	state string // stands in for the sidecar's state dir
	root  string // workspace root inside it
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cli := sandboxtest.Client(t)
	e := &env{cli: cli, image: sandboxtest.TestImage(t, cli), inst: sandboxtest.Instance(t, cli)}
	e.state = t.TempDir()
	e.root = filepath.Join(e.state, "workspaces")
	return e
}

// manager starts a Manager shut down when the test ends (before the leak
// check of the instance runs).
func (e *env) manager(t *testing.T, profiles map[string]sandbox.Profile, mod ...func(*sandbox.Options)) *sandbox.Manager {
	t.Helper()
	for k, p := range profiles {
		if p.Image == "" {
			p.Image = e.image
		}
		profiles[k] = p
	}
	opts := sandbox.Options{
		Client: e.cli, Instance: e.inst, Profiles: profiles, WorkspaceRoot: e.root,
		ProtectedPaths: []string{e.state}, PruneInterval: -1,
	}
	for _, f := range mod {
		f(&opts)
	}
	m, err := sandbox.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return m
}

// removeAll deletes every sandbox of m through its API (per-agent and shared
// ones outlive Close by design).
func removeAll(t *testing.T, m *sandbox.Manager) {
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, s := range m.List() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.Remove(s.ID); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	})
}

type out struct {
	res            sandbox.ExecResult
	stdout, stderr string
}

func run(t *testing.T, m *sandbox.Manager, agent, session string, argv ...string) out {
	t.Helper()
	return runReq(t, m, sandbox.ExecRequest{Agent: agent, Session: session, Argv: argv})
}

func runReq(t *testing.T, m *sandbox.Manager, req sandbox.ExecRequest) out {
	t.Helper()
	var so, se bytes.Buffer
	req.Stdout, req.Stderr = &so, &se
	res, err := m.Exec(context.Background(), req)
	if err != nil {
		t.Fatalf("exec %q: %v", req.Argv, err)
	}
	return out{res, so.String(), se.String()}
}

// TestConfinement runs one sandbox through the checks a hostile command
// would try: who it runs as, what it can write, which network it has, which
// capabilities, and whether a workspace symlink reaches host files.
func TestConfinement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ws := filepath.Join(e.root, "main")
	if err := os.MkdirAll(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(ws, 0o777)
	secretFile := filepath.Join(t.TempDir(), "host-secret")
	os.WriteFile(secretFile, []byte("HOST-SECRET-CONTENT"), 0o644)
	os.Symlink(secretFile, filepath.Join(ws, "abs-link"))
	os.Symlink("../../../../../../../.."+secretFile, filepath.Join(ws, "rel-link"))
	os.Symlink("/", filepath.Join(ws, "root-link"))

	secrets := mapSecrets{"api-token": []byte("s3cr3t-value")}
	m := e.manager(t, map[string]sandbox.Profile{"main": {
		Scope: sandbox.ScopeAgent, Workspace: "rw", OutputLimitBytes: 1000, PidsLimit: 64, MemoryMB: 64,
		Env: map[string]string{"PROFILE_VAR": "p"}, Secrets: map[string]string{"API_TOKEN": "api-token"},
	}}, func(o *sandbox.Options) { o.Secrets = secrets })
	removeAll(t, m)

	o := run(t, m, "main", "", "id")
	if o.res.ExitCode != 0 || strings.TrimSpace(o.stdout) != "uid=65532 gid=65532 groups=65532" {
		t.Fatalf("id: %+v %q %q", o.res, o.stdout, o.stderr)
	}
	if !o.res.Created {
		t.Error("first command did not report the container start")
	}
	id := o.res.SandboxID

	t.Run("engine config", func(t *testing.T) {
		ins, err := e.cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hc, c := ins.Container.HostConfig, ins.Container.Config
		if !hc.ReadonlyRootfs || !slices.Equal(hc.CapDrop, []string{"ALL"}) || len(hc.CapAdd) != 0 || hc.Privileged ||
			!slices.Contains(hc.SecurityOpt, "no-new-privileges") || hc.Init == nil || !*hc.Init ||
			hc.NetworkMode != "none" || hc.PidsLimit == nil || *hc.PidsLimit != 64 ||
			hc.Memory != 64<<20 || hc.MemorySwap != hc.Memory || c.User != "65532:65532" {
			t.Fatalf("host config not confined: %+v user %q", hc, c.User)
		}
		for _, kv := range c.Env {
			if strings.Contains(kv, "s3cr3t") {
				t.Fatalf("secret in the container's configuration: %q", kv)
			}
		}
		if c.Labels[sandbox.LabelSandbox] != "1" || c.Labels[sandbox.LabelScope] != "agent" ||
			c.Labels[sandbox.LabelKey] != "main" || c.Labels[sandbox.LabelHash] == "" || c.Labels[sandbox.LabelInstance] != e.inst {
			t.Fatalf("labels: %v", c.Labels)
		}
	})
	t.Run("no capabilities, no new privileges", func(t *testing.T) {
		o := run(t, m, "main", "", "grep", "-E", "^(CapEff|CapPrm|NoNewPrivs)", "/proc/self/status")
		for _, want := range []string{"CapPrm:\t0000000000000000", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"} {
			if !strings.Contains(o.stdout, want) {
				t.Errorf("missing %q in %q", want, o.stdout)
			}
		}
	})
	t.Run("read-only root, writes outside workspace fail", func(t *testing.T) {
		for _, p := range []string{"/x", "/bin/x", "/etc/passwd", "/home", "/var/x", "/usr/x"} {
			o := run(t, m, "main", "", "touch", p)
			if o.res.ExitCode == 0 {
				t.Errorf("touch %s succeeded", p)
			}
		}
		o := run(t, m, "main", "", "touch", "/workspace/written")
		if o.res.ExitCode != 0 {
			t.Fatalf("workspace write failed: %+v %s", o.res, o.stderr)
		}
		if _, err := os.Stat(filepath.Join(ws, "written")); err != nil {
			t.Fatalf("workspace write not on the host: %v", err)
		}
	})
	t.Run("no network", func(t *testing.T) {
		o := run(t, m, "main", "", "ls", "/sys/class/net")
		if strings.Fields(o.stdout)[0] != "lo" || len(strings.Fields(o.stdout)) != 1 {
			t.Fatalf("interfaces: %q", o.stdout)
		}
		o = run(t, m, "main", "", "nc", "-w", "2", "172.17.0.1", "80")
		if o.res.ExitCode == 0 || !strings.Contains(o.stderr, "Network is unreachable") {
			t.Fatalf("reached the docker host: %+v %q", o.res, o.stderr)
		}
	})
	t.Run("workspace symlinks do not reach host files", func(t *testing.T) {
		for _, l := range []string{"/workspace/abs-link", "/workspace/rel-link", "/workspace/root-link" + secretFile} {
			o := run(t, m, "main", "", "cat", l)
			if o.res.ExitCode == 0 || strings.Contains(o.stdout, "HOST-SECRET") {
				t.Errorf("cat %s: exit %d, %q", l, o.res.ExitCode, o.stdout)
			}
		}
		// As a working directory, the link resolves inside the sandbox too.
		o := runReq(t, m, sandbox.ExecRequest{Agent: "main", Argv: []string{"ls"}, Cwd: "root-link" + filepath.Dir(secretFile)})
		if strings.Contains(o.stdout, "host-secret") {
			t.Errorf("cwd through a link listed the host dir: %q", o.stdout)
		}
	})
	t.Run("argv as given, no shell", func(t *testing.T) {
		o := run(t, m, "main", "", "echo", "$HOME", "a;b", "`id`")
		if o.stdout != "$HOME a;b `id`\n" {
			t.Fatalf("got %q", o.stdout)
		}
	})
	t.Run("env and secrets", func(t *testing.T) {
		o := runReq(t, m, sandbox.ExecRequest{Agent: "main", Argv: []string{"env"}, Env: map[string]string{"REQ_VAR": "r"}})
		for _, want := range []string{"REQ_VAR=r", "PROFILE_VAR=p", "API_TOKEN=s3cr3t-value", "HOME=/tmp", "PATH=" + sandbox.DefaultPath} {
			if !strings.Contains(o.stdout, want+"\n") {
				t.Errorf("env lacks %s: %q", want, o.stdout)
			}
		}
		for _, bad := range []map[string]string{{"PATH": "/workspace"}, {"LD_PRELOAD": "/workspace/x.so"}, {"API_TOKEN": "mine"}, {"1X": "y"}} {
			_, err := m.Exec(context.Background(), sandbox.ExecRequest{Agent: "main", Argv: []string{"true"}, Env: bad})
			if !errors.Is(err, sandbox.ErrInvalidRequest) {
				t.Errorf("env %v: %v", bad, err)
			}
		}
	})
	t.Run("cwd outside workspace refused", func(t *testing.T) {
		for _, cwd := range []string{"/etc", "..", "/workspace/../etc"} {
			_, err := m.Exec(context.Background(), sandbox.ExecRequest{Agent: "main", Argv: []string{"pwd"}, Cwd: cwd})
			if !errors.Is(err, sandbox.ErrInvalidRequest) {
				t.Errorf("cwd %q: %v", cwd, err)
			}
		}
	})
	t.Run("output cap", func(t *testing.T) {
		o := run(t, m, "main", "", "sh", "-c", "yes | head -c 100000; yes e | head -c 5000 >&2")
		if len(o.stdout) != 1000 || !o.res.StdoutTruncated || len(o.stderr) != 1000 || !o.res.StderrTruncated || o.res.ExitCode != 0 {
			t.Fatalf("stdout %d stderr %d result %+v", len(o.stdout), len(o.stderr), o.res)
		}
		o = run(t, m, "main", "", "echo", "short")
		if o.res.StdoutTruncated {
			t.Fatal("short output reported truncated")
		}
	})
	t.Run("unknown agent has no sandbox", func(t *testing.T) {
		_, err := m.Exec(context.Background(), sandbox.ExecRequest{Agent: "other", Argv: []string{"true"}})
		if !errors.Is(err, sandbox.ErrNoProfile) {
			t.Fatalf("got %v", err)
		}
	})
	if o := run(t, m, "main", "", "true"); o.res.SandboxID != id || o.res.Created {
		t.Fatalf("per-agent container not reused: %s vs %s", o.res.SandboxID, id)
	}
	if p, err := m.Profile("main"); err != nil || p.Path != sandbox.DefaultPath || p.Image != e.image || p.PidsLimit != 64 {
		t.Fatalf("Profile: %+v %v", p, err)
	}
}

type mapSecrets map[string][]byte

func (s mapSecrets) Get(name string) ([]byte, error) {
	v, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("secret %q: not found", name)
	}
	return v, nil
}

// TestKillOnlyTheCommand: with the exec agent, a command past its timeout,
// or whose caller cancels, is killed together with what it left running in
// the background, and nothing else: another session's command in the same
// per-agent container keeps running and finishes, and the container stays.
func TestKillOnlyTheCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.manager(t, map[string]sandbox.Profile{"*": {Scope: sandbox.ScopeAgent, Timeout: sandbox.Duration(20 * time.Second)}})
	removeAll(t, m)
	first := run(t, m, "a", "s1", "true")
	for _, how := range []string{"timeout", "cancel"} {
		t.Run(how, func(t *testing.T) {
			type result struct {
				o   out
				err error
			}
			other := make(chan result, 1)
			go func() {
				var so bytes.Buffer
				res, err := m.Exec(context.Background(), sandbox.ExecRequest{Agent: "a", Session: "s2",
					Argv: []string{"sh", "-c", "sleep 3; echo survived"}, Stdout: &so})
				other <- result{out{res: res, stdout: so.String()}, err}
			}()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := sandbox.ExecRequest{Agent: "a", Session: "s1", Argv: []string{"sh", "-c", "sleep 300 & echo $!; exec sleep 30"}}
			if how == "timeout" {
				req.Timeout = time.Second
			} else {
				time.AfterFunc(time.Second, cancel)
			}
			var so bytes.Buffer
			req.Stdout = &so
			start := time.Now()
			res, err := m.Exec(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != 137 || res.TimedOut != (how == "timeout") || res.Cancelled != (how == "cancel") || res.SandboxID != first.res.SandboxID {
				t.Fatalf("result %+v stdout %q", res, so.String())
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("the kill took %s", d)
			}
			child := strings.TrimSpace(so.String())
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				st := run(t, m, "a", "s3", "sh", "-c", "cat /proc/"+child+"/stat 2>/dev/null || true")
				if _, rest, _ := strings.Cut(st.stdout, ") "); rest == "" || strings.HasPrefix(rest, "Z") {
					break // gone, or a zombie waiting for docker-init
				}
				if time.Now().After(deadline) {
					t.Fatalf("background child %s survived the kill: %q", child, st.stdout)
				}
			}
			r := <-other
			if r.err != nil || r.o.stdout != "survived\n" || r.o.res.ExitCode != 0 || r.o.res.SandboxID != first.res.SandboxID {
				t.Fatalf("the other session's command: %+v %q %v", r.o.res, r.o.stdout, r.err)
			}
		})
	}
	if l := m.List(); len(l) != 1 || l[0].ID != first.res.SandboxID {
		t.Fatalf("sandboxes after the kills: %+v", l)
	}
}

// TestTimeoutKillsDockerExec: on the "exec": "docker" path a command past
// its timeout is killed with its whole container, background work
// included; the session continues in a fresh sandbox.
func TestTimeoutKillsDockerExec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.manager(t, map[string]sandbox.Profile{"*": {Exec: sandbox.ExecDocker, Timeout: sandbox.Duration(20 * time.Second)}})
	first := run(t, m, "a", "s1", "true")
	start := time.Now()
	o := runReq(t, m, sandbox.ExecRequest{Agent: "a", Session: "s1", Timeout: time.Second,
		Argv: []string{"sh", "-c", "sleep 300 & echo started; exec sleep 30"}})
	if !o.res.TimedOut || o.res.ExitCode != 137 || o.stdout != "started\n" {
		t.Fatalf("result %+v stdout %q", o.res, o.stdout)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("timeout took %s", d)
	}
	if _, err := e.cli.ContainerInspect(context.Background(), first.res.SandboxID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("the timed-out sandbox still exists: %v", err)
	}
	next := run(t, m, "a", "s1", "ps")
	if next.res.SandboxID == first.res.SandboxID || !next.res.Created || strings.Contains(next.stdout, "sleep 30") {
		t.Fatalf("after timeout: %+v\n%s", next.res, next.stdout)
	}
}

// TestOOMReported: a memory hog is killed by the kernel and reported as
// such; a command that kills itself the same way is not.
func TestOOMReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.manager(t, map[string]sandbox.Profile{"*": {MemoryMB: 32}})
	o := run(t, m, "a", "s1", "dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1")
	if o.res.ExitCode != 137 || !o.res.OOMKilled || o.res.TimedOut {
		t.Fatalf("memory hog: %+v %q", o.res, o.stderr)
	}
	o = run(t, m, "a", "s1", "sh", "-c", "kill -9 $$")
	if o.res.ExitCode != 137 || o.res.OOMKilled {
		t.Fatalf("self-kill reported as OOM: %+v", o.res)
	}
}

// TestForkBombHeld: a fork bomb stops at the pids limit while it runs, and
// the timeout ends it. The proof is the kernel's: the container's pids
// cgroup counts the forks it refused (pids.events "max"), read from the
// host while the bomb runs — sampling the process count cannot show it, as
// busybox's shells die on a failed fork and the peak lasts milliseconds.
func TestForkBombHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.manager(t, map[string]sandbox.Profile{"*": {PidsLimit: 32, CPUs: 0.5}})
	first := run(t, m, "a", "s1", "true")
	cg, err := pidsCgroup(e.cli, first.res.SandboxID)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("reading the sandbox's pids cgroup from the host: %v", err)
		}
		t.Skipf("not on the Docker host: %v", err)
	}
	if limit := readCgroupFile(t, cg, "pids.max"); limit != "32" {
		t.Fatalf("pids.max = %q, want 32", limit)
	}
	type result struct {
		o   out
		err error
	}
	done := make(chan result, 1)
	go func() {
		var so, se bytes.Buffer
		// Each bomb process leaves a sleeper behind, so the sandbox stays
		// full until the timeout.
		res, err := m.Exec(context.Background(), sandbox.ExecRequest{Agent: "a", Session: "s1", Timeout: 6 * time.Second,
			Argv: []string{"sh", "-c", "f(){ sleep 60 & f|f& }; f; exec sleep 60"}, Stdout: &so, Stderr: &se})
		done <- result{out{res, so.String(), se.String()}, err}
	}()
	refused := 0
	var r result
poll:
	for {
		select {
		case r = <-done:
			break poll
		case <-time.After(20 * time.Millisecond):
		}
		if refused == 0 { // "max N"; the file goes with the container
			fmt.Sscanf(readCgroupFile(t, cg, "pids.events"), "max %d", &refused)
		}
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if refused == 0 {
		t.Fatal("the pids cgroup refused no fork: the bomb was not held by the limit")
	}
	if !r.o.res.TimedOut || !strings.Contains(r.o.stderr, "can't fork") {
		t.Fatalf("bomb result %+v stderr %.200q", r.o.res, r.o.stderr)
	}
	t.Logf("pids limit 32 refused %d forks before the timeout", refused)
	// Only the bomb's process group was killed: the sandbox stays, empty.
	if o := run(t, m, "a", "s1", "ps", "-o", "comm"); o.res.SandboxID != first.res.SandboxID || strings.Contains(o.stdout, "sleep") || strings.Contains(o.stdout, "sh\n") {
		t.Fatalf("after the bomb: %+v %q", o.res, o.stdout)
	}
}

// pidsCgroup returns the host directory of container id's pids cgroup,
// through its init process's /proc/<pid>/cgroup (cgroup v1 or v2).
func pidsCgroup(cli *client.Client, id string) (string, error) {
	ins, err := cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", ins.Container.State.Pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir string
		switch {
		case slices.Contains(strings.Split(parts[1], ","), "pids"):
			dir = filepath.Join("/sys/fs/cgroup/pids", parts[2])
		case parts[0] == "0" && parts[1] == "":
			dir = filepath.Join("/sys/fs/cgroup", parts[2])
		default:
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "pids.events")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no pids cgroup with pids.events for container %.12s in /proc/%d/cgroup", id, ins.Container.State.Pid)
}

// readCgroupFile returns the trimmed content of a cgroup file, "" once the
// cgroup is gone.
func readCgroupFile(t *testing.T, dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("reading %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

// TestScopes: per-session sandboxes are per session, per-agent ones per
// agent across sessions, shared ones shared by every agent of the profile.
func TestScopes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.manager(t, map[string]sandbox.Profile{
		"sess": {Scope: sandbox.ScopeSession},
		"ag1":  {Scope: sandbox.ScopeAgent},
		"ag2":  {Scope: sandbox.ScopeAgent},
		"*":    {Scope: sandbox.ScopeShared},
	}, func(o *sandbox.Options) { o.MaxSandboxes = 5 })
	removeAll(t, m)
	type call struct{ agent, session string }
	calls := []call{{"sess", "A"}, {"sess", "B"}, {"ag1", "A"}, {"ag2", "A"}, {"x", "A"}, {"y", "B"}}
	ids := make([]string, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var so bytes.Buffer
			res, err := m.Exec(context.Background(), sandbox.ExecRequest{Agent: c.agent, Session: c.session,
				Argv: []string{"sh", "-c", "echo " + c.agent + c.session + " >> /tmp/marks; cat /tmp/marks"}, Stdout: &so})
			if err != nil {
				t.Error(err)
			}
			ids[i] = res.SandboxID
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	again := func(agent, session string) out {
		return run(t, m, agent, session, "cat", "/tmp/marks")
	}
	if o := again("sess", "A"); o.res.SandboxID != ids[0] || o.stdout != "sessA\n" {
		t.Errorf("session A: %s %q", o.res.SandboxID, o.stdout)
	}
	if ids[0] == ids[1] {
		t.Error("two sessions share a per-session sandbox")
	}
	if o := again("ag1", "B"); o.res.SandboxID != ids[2] || o.stdout != "ag1A\n" {
		t.Errorf("per-agent sandbox not kept across sessions: %s %q", o.res.SandboxID, o.stdout)
	}
	if ids[2] == ids[3] {
		t.Error("two agents share a per-agent sandbox")
	}
	if ids[4] != ids[5] {
		t.Error("shared sandbox not shared between agents")
	}
	if o := again("z", "C"); o.res.SandboxID != ids[4] || len(strings.Fields(o.stdout)) != 2 {
		t.Errorf("shared: %s %q", o.res.SandboxID, o.stdout)
	}
	if len(m.List()) != 5 {
		t.Errorf("%d sandboxes, want 5: %+v", len(m.List()), m.List())
	}
	// A sixth container would pass max_sandboxes; existing ones still work.
	if _, err := m.Exec(context.Background(), sandbox.ExecRequest{Agent: "sess", Session: "C", Argv: []string{"true"}}); !errors.Is(err, sandbox.ErrLimit) {
		t.Errorf("sixth sandbox: %v", err)
	}
	if o := again("sess", "B"); o.res.SandboxID != ids[1] {
		t.Errorf("existing session at the limit: %+v", o.res)
	}
	if err := m.Remove("nonexistent-id-000"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("remove unknown: %v", err)
	}
}

// TestRestartAdoption: after a crash, a new manager adopts its running
// per-agent and pooled containers whose profile is unchanged and removes
// everything else of its instance, but nothing of another instance.
func TestRestartAdoption(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	profiles := func(changedMem int64) map[string]sandbox.Profile {
		return map[string]sandbox.Profile{
			"keep":    {Scope: sandbox.ScopeAgent},
			"stopped": {Scope: sandbox.ScopeAgent},
			"changes": {Scope: sandbox.ScopeAgent, MemoryMB: changedMem},
			"sess":    {Scope: sandbox.ScopeSession},
			"pooled":  {Scope: sandbox.ScopeSession, PoolSize: 1},
		}
	}
	// The first run "crashes": it is never closed.
	m1, err := sandbox.New(context.Background(), sandbox.Options{Client: e.cli, Instance: e.inst, Profiles: withImage(profiles(128), e.image),
		WorkspaceRoot: e.root, PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range []string{"keep", "stopped", "changes", "sess"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := m1.Exec(context.Background(), sandbox.ExecRequest{Agent: a, Session: "s1", Argv: []string{"true"}})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			ids[a] = res.SandboxID
			mu.Unlock()
		}()
	}
	if err := m1.Warm(context.Background(), "pooled"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	o := run(t, m1, "pooled", "s1", "true")
	if !o.res.Pooled {
		t.Fatalf("pooled profile's first command did not use the pool: %+v", o.res)
	}
	ids["pooled-session"] = o.res.SandboxID
	if err := m1.Warm(context.Background(), "pooled"); err != nil { // wait for the refill
		t.Fatal(err)
	}
	for _, s := range m1.List() {
		if s.Profile == "pooled" && s.Session == "" {
			ids["pooled-idle"] = s.ID
		}
	}
	if ids["pooled-idle"] == "" {
		t.Fatalf("pool not refilled: %+v", m1.List())
	}
	if _, err := e.cli.ContainerKill(context.Background(), ids["stopped"], client.ContainerKillOptions{}); err != nil {
		t.Fatal(err)
	}
	m1.Crash() // its connections to the agents drop; nothing is removed
	// Another sidecar instance on the same engine.
	other := sandboxtest.Instance(t, e.cli)
	mo, err := sandbox.New(context.Background(), sandbox.Options{Client: e.cli, Instance: other,
		Profiles: withImage(map[string]sandbox.Profile{"*": {Scope: sandbox.ScopeAgent}}, e.image), WorkspaceRoot: e.root, PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	foreign := run(t, mo, "keep", "", "true").res.SandboxID
	t.Cleanup(func() { sandboxtest.RemoveAll(t, e.cli, other) })

	m2 := e.manager(t, profiles(256))
	removeAll(t, m2)
	var adopted []string
	for _, s := range m2.List() {
		adopted = append(adopted, s.ID)
	}
	slices.Sort(adopted)
	want := []string{ids["keep"], ids["pooled-idle"]}
	slices.Sort(want)
	if !slices.Equal(adopted, want) {
		t.Fatalf("adopted %v, want keep and the idle pool container %v (all: %v)", adopted, want, ids)
	}
	for _, gone := range []string{"stopped", "changes", "sess", "pooled-session"} {
		if _, err := e.cli.ContainerInspect(context.Background(), ids[gone], client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("%s container survived the restart: %v", gone, err)
		}
	}
	if _, err := e.cli.ContainerInspect(context.Background(), foreign, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("another instance's container was touched: %v", err)
	}
	if o := run(t, m2, "keep", "", "true"); o.res.SandboxID != ids["keep"] || o.res.Created {
		t.Errorf("adopted container not used: %+v", o.res)
	}
	if o := run(t, m2, "changes", "", "true"); o.res.SandboxID == ids["changes"] || !o.res.Created {
		t.Errorf("changed profile did not get a new container: %+v", o.res)
	}
	if o := run(t, m2, "pooled", "s2", "true"); o.res.SandboxID != ids["pooled-idle"] || !o.res.Pooled {
		t.Errorf("adopted pool container not used: %+v", o.res)
	}
}

func withImage(ps map[string]sandbox.Profile, image string) map[string]sandbox.Profile {
	for k, p := range ps {
		p.Image = image
		ps[k] = p
	}
	return ps
}

// TestWarmPoolAndPrune: a pooled session starts without creating a
// container; idle sessions are pruned while the pool is kept full; Close
// removes both.
func TestWarmPoolAndPrune(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.manager(t, map[string]sandbox.Profile{"*": {PoolSize: 1, IdleTimeout: sandbox.Duration(time.Second)}})
	if err := m.Warm(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	l := m.List()
	if len(l) != 1 || !l[0].Pooled || l[0].Session != "" {
		t.Fatalf("after warm: %+v", l)
	}
	o := run(t, m, "a", "s1", "echo", "hi")
	if !o.res.Pooled || o.res.Created || o.res.SandboxID != l[0].ID || o.stdout != "hi\n" {
		t.Fatalf("pooled exec: %+v %q", o.res, o.stdout)
	}
	if err := m.Warm(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if n := len(m.List()); n != 2 {
		t.Fatalf("%d sandboxes after refill, want 2", n)
	}
	time.Sleep(1100 * time.Millisecond)
	if n := m.Prune(); n != 1 {
		t.Fatalf("pruned %d, want the idle session only", n)
	}
	l = m.List()
	if len(l) != 1 || l[0].Session != "" {
		t.Fatalf("after prune: %+v", l)
	}
	if _, err := e.cli.ContainerInspect(context.Background(), o.res.SandboxID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("pruned container still exists: %v", err)
	}
}

// TestCancelAndClose: cancelling a command kills it; Close kills running
// commands and removes per-session sandboxes, then refuses new commands.
func TestCancelAndClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.manager(t, map[string]sandbox.Profile{"*": {}})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	res, err := m.Exec(ctx, sandbox.ExecRequest{Agent: "a", Session: "s", Argv: []string{"sleep", "60"}})
	if err != nil || !res.Cancelled || res.ExitCode != 137 {
		t.Fatalf("cancel: %+v %v", res, err)
	}
	done := make(chan sandbox.ExecResult, 1)
	go func() {
		res, _ := m.Exec(context.Background(), sandbox.ExecRequest{Agent: "a", Session: "s2", Argv: []string{"sleep", "60"}})
		done <- res
	}()
	running := func() bool {
		for _, s := range m.List() {
			if s.Running > 0 {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(30 * time.Second); !running(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the command never started")
		}
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := <-done; !r.Cancelled {
		t.Fatalf("running command not cancelled by Close: %+v", r)
	}
	if left := sandboxtest.Containers(t, e.cli, e.inst); len(left) != 0 {
		t.Fatalf("containers left after Close: %v", left)
	}
	if _, err := m.Exec(context.Background(), sandbox.ExecRequest{Agent: "a", Session: "s", Argv: []string{"true"}}); !errors.Is(err, sandbox.ErrClosed) {
		t.Fatalf("exec after close: %v", err)
	}
}

// TestMaxAge: a per-agent sandbox older than max_age is removed once idle,
// and the next command gets a new one.
func TestMaxAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const maxAge = 5 * time.Second
	m := e.manager(t, map[string]sandbox.Profile{"*": {Scope: sandbox.ScopeAgent, MaxAge: sandbox.Duration(maxAge)}})
	removeAll(t, m)
	t0 := time.Now()
	first := run(t, m, "a", "", "true")
	if n := m.Prune(); n != 0 && time.Since(t0) < maxAge {
		t.Fatalf("pruned %d young sandboxes", n)
	}
	time.Sleep(time.Until(m.List()[0].CreatedAt.Add(maxAge + 100*time.Millisecond)))
	if n := m.Prune(); n != 1 {
		t.Fatalf("pruned %d, want the old one", n)
	}
	if o := run(t, m, "a", "", "true"); o.res.SandboxID == first.res.SandboxID || !o.res.Created {
		t.Fatalf("old sandbox reused: %+v", o.res)
	}
}

type slowWriter struct{}

func (slowWriter) Write(p []byte) (int, error) { time.Sleep(2 * time.Second); return len(p), nil }

// TestAgentMisbehaves: the exec agent runs as the sandbox user, so a
// command can kill it or write to its stream (/proc/1/fd/1 is docker-init's
// stdout, the same pipe as the agent's). The sidecar treats what arrives as
// hostile: each time, the commands running in that container end with an
// error saying why, the container is removed, and the session's next
// command gets a new one. Output within the protocol is capped, not
// buffered.
func TestAgentMisbehaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.manager(t, map[string]sandbox.Profile{"*": {OutputLimitBytes: 1000}})
	// A well-formed stdout frame header for stream 1 (the first command of
	// a fresh container) carrying 64 KiB: eight of them exceed its credit.
	const hdr = `\000\001\000\005\020\000\000\000\001`
	for _, c := range []struct {
		name, script, want string
	}{
		{"kills the agent", "kill -9 $PPID; sleep 5", "the exec agent exited"},
		{"garbage frames", `printf '\377\377\377\377garbage' > /proc/1/fd/1; sleep 5`, "protocol violation: bad frame: length 4294967295"},
		{"zero flood", "head -c 10000000 /dev/zero > /proc/1/fd/1; sleep 5", "protocol violation: bad frame: length 0"},
		{"frame on a stream not open", `printf '\000\000\000\010\020\000\000\000\007xyz' > /proc/1/fd/1; sleep 5`, "for stream 7, which is not open"},
		{"frames beyond credit", `for i in 1 2 3 4 5 6 7 8; do printf '` + hdr + `'; head -c 65536 /dev/zero; done > /proc/1/fd/1; sleep 5`, "bytes of credit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			session := strings.ReplaceAll(c.name, " ", "-")
			// A bystander in the same container, started first so the
			// culprit is not stream 1... except for the credit case.
			type result struct {
				res sandbox.ExecResult
				err error
			}
			var bystander chan result
			if c.name != "frames beyond credit" {
				bystander = make(chan result, 1)
				go func() {
					res, err := m.Exec(context.Background(), sandbox.ExecRequest{Agent: "a", Session: session, Argv: []string{"sleep", "30"}})
					bystander <- result{res, err}
				}()
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					if l := m.List(); len(l) > 0 && slices.ContainsFunc(l, func(s sandbox.Sandbox) bool { return s.Session == session && s.Running > 0 }) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the bystander never started")
					}
				}
			}
			start := time.Now()
			req := sandbox.ExecRequest{Agent: "a", Session: session, Argv: []string{"sh", "-c", c.script}}
			if bystander == nil {
				// A receiver that takes its time: credit comes back late.
				req.Stdout = slowWriter{}
			}
			res, err := m.Exec(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "the sandbox was removed") {
				t.Fatalf("culprit: %+v, err %v; want an error with %q", res, err, c.want)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Fatalf("noticed after %s", d)
			}
			if bystander != nil {
				if r := <-bystander; r.err == nil || !strings.Contains(r.err.Error(), c.want) {
					t.Fatalf("bystander: %+v %v", r.res, r.err)
				}
			}
			var id string
			for _, s := range m.List() {
				if s.Session == session {
					id = s.ID
				}
			}
			if id != "" {
				t.Fatalf("the sandbox %s is still listed", id)
			}
			o := run(t, m, "a", session, "echo", "fresh")
			if o.stdout != "fresh\n" || !o.res.Created {
				t.Fatalf("next command: %+v %q", o.res, o.stdout)
			}
		})
	}
	t.Run("output flood within the protocol", func(t *testing.T) {
		o := run(t, m, "a", "flood", "head", "-c", "30000000", "/dev/zero")
		if o.res.ExitCode != 0 || !o.res.StdoutTruncated || len(o.stdout) != 1000 {
			t.Fatalf("flood: %+v, %d bytes", o.res, len(o.stdout))
		}
		if again := run(t, m, "a", "flood", "true"); again.res.SandboxID != o.res.SandboxID {
			t.Fatalf("the flood cost its sandbox: %+v", again.res)
		}
	})
	// Every removed sandbox is gone from the engine too.
	for deadline := time.Now().Add(30 * time.Second); len(sandboxtest.Containers(t, e.cli, e.inst)) != len(m.List()); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("containers %v, listed %+v", sandboxtest.Containers(t, e.cli, e.inst), m.List())
		}
	}
}

// TestWithoutAgentBinary: without a clawguard-agent binary, commands of
// "exec": "agent" profiles fail saying what is missing, and "exec":
// "docker" profiles keep working.
func TestWithoutAgentBinary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	missing := filepath.Join(t.TempDir(), "clawguard-agent")
	m := e.manager(t, map[string]sandbox.Profile{"agent": {}, "docker": {Exec: sandbox.ExecDocker}},
		func(o *sandbox.Options) { o.AgentPath = missing })
	_, err := m.Exec(context.Background(), sandbox.ExecRequest{Agent: "agent", Session: "s", Argv: []string{"true"}})
	if !errors.Is(err, sandbox.ErrNoAgent) || !strings.Contains(err.Error(), `sandbox profile "agent": exec "agent": no clawguard-agent binary`) {
		t.Fatalf("agent profile without the binary: %v", err)
	}
	if o := run(t, m, "docker", "s", "echo", "ok"); o.stdout != "ok\n" {
		t.Fatalf("docker exec profile: %+v %q", o.res, o.stdout)
	}
}
