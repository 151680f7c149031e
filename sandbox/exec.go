package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/clawguard/clawguard/internal/execagent"
)

// ErrInvalidRequest wraps every refusal of a malformed ExecRequest.
var ErrInvalidRequest = errors.New("invalid request")

// errStopped: the container was not running when a command was to start in
// it, so nothing ran and a fresh container may be tried.
var errStopped = errors.New("sandbox container is not running")

// ExecRequest is one command to run in a sandbox.
type ExecRequest struct {
	// Agent selects the profile (by name, else "*").
	Agent string
	// Session identifies the session; required for per-session profiles.
	Session string
	// Argv is executed as given: no shell is interposed.
	Argv []string
	// Cwd is the working directory, inside /workspace (absolute, or
	// relative to /workspace). Default /workspace.
	Cwd string
	// Env adds environment variables. PATH, HOME, LD_* and the profile's own
	// env and secrets names are refused.
	Env map[string]string
	// Timeout shortens the profile's timeout; 0 means the profile's.
	Timeout time.Duration
	// Stdout and Stderr receive the output as it comes, each cut at the
	// profile's output limit. Nil discards.
	Stdout, Stderr io.Writer
}

// ExecResult is how a command ended.
type ExecResult struct {
	ExitCode        int
	Duration        time.Duration // from the start of the command
	TimedOut        bool          // killed at the timeout
	Cancelled       bool          // killed because the caller cancelled or the sidecar shut down
	OOMKilled       bool          // the kernel killed it for the memory limit
	StdoutTruncated bool
	StderrTruncated bool
	SandboxID       string
	Created         bool // the container was created for this command (cold start)
	Pooled          bool // the container came from the warm pool
}

// Exec runs req in the agent's sandbox, creating the container if needed.
// A command that outlives its timeout, or whose ctx is cancelled, is
// killed: with the exec agent ("exec": "agent"), its process group only
// (the container and other commands in it stay); with "exec": "docker", its
// whole container, as Docker cannot signal one exec (the next command then
// gets a fresh container; the workspace stays).
func (m *Manager) Exec(ctx context.Context, req ExecRequest) (ExecResult, error) {
	s, err := m.specFor(req.Agent)
	if err != nil {
		if errors.Is(err, ErrNoProfile) {
			return ExecResult{}, err
		}
		return ExecResult{}, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if s.p.Scope == ScopeSession && !ValidSession(req.Session) {
		return ExecResult{}, fmt.Errorf("%w: session %q: per-session sandboxes need a session id (letters, digits, '.', '_', ':', '-'; at most 128)", ErrInvalidRequest, req.Session)
	}
	if err := checkArgv(req.Argv); err != nil {
		return ExecResult{}, err
	}
	cwd, err := execCwd(req.Cwd)
	if err != nil {
		return ExecResult{}, err
	}
	timeout := time.Duration(s.p.Timeout)
	switch {
	case req.Timeout < 0:
		return ExecResult{}, fmt.Errorf("%w: negative timeout", ErrInvalidRequest)
	case req.Timeout > 0 && req.Timeout < timeout:
		timeout = req.Timeout
	}
	env, err := m.execEnv(s, req.Env)
	if err != nil {
		return ExecResult{}, err
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ExecResult{}, ErrClosed
	}
	m.execs.Add(1)
	m.mu.Unlock()
	defer m.execs.Done()

	key := scopeKey(s, req.Agent, req.Session)
	for attempt := 0; ; attempt++ {
		b, created, taken, err := m.acquire(ctx, s, key, req.Session)
		if err != nil {
			return ExecResult{}, err
		}
		res, err := m.run(ctx, b, req, cwd, env, timeout)
		m.release(b)
		if err == nil && s.p.PoolSize > 0 {
			m.noteProgram(s, req.Argv[0])
		}
		if taken != nil {
			m.refill(taken)
		}
		if errors.Is(err, errStopped) && attempt == 0 {
			m.discard(b, "stopped")
			continue
		}
		res.SandboxID, res.Created, res.Pooled = b.id, created, b.pooled
		return res, err
	}
}

func (m *Manager) run(ctx context.Context, b *box, req ExecRequest, cwd string, env []string, timeout time.Duration) (ExecResult, error) {
	if b.agent != nil {
		return m.runAgent(ctx, b, req, cwd, env, timeout)
	}
	// Engine calls are not cancelled with ctx: an exec the engine started
	// after the caller gave up would run unsupervised. ctx is watched below.
	api, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	start := time.Now()
	cr, err := m.cli.ExecCreate(api, b.id, client.ExecCreateOptions{
		User:         b.spec.p.User,
		AttachStdout: true,
		AttachStderr: true,
		Env:          env,
		WorkingDir:   cwd,
		Cmd:          req.Argv,
	})
	if err != nil {
		if cerrdefs.IsConflict(err) || cerrdefs.IsNotFound(err) {
			return ExecResult{}, fmt.Errorf("%w: %v", errStopped, err)
		}
		return ExecResult{}, fmt.Errorf("sandbox exec: create: %w", err)
	}
	att, err := m.cli.ExecAttach(api, cr.ID, client.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("sandbox exec: start: %w", err)
	}
	defer att.Close()

	limit := b.spec.p.OutputLimitBytes
	stdout := &capWriter{w: req.Stdout, left: limit}
	stderr := &capWriter{w: req.Stderr, left: limit}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		copied <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()

	var res ExecResult
	var copyErr error
	done := false
	select {
	case copyErr = <-copied:
		done = true
		// The receiver of the output is gone: nobody waits for this command.
		res.Cancelled = stdout.err != nil || stderr.err != nil
	case <-timer.C:
		res.TimedOut = true
	case <-ctx.Done():
		res.Cancelled = true
	case <-m.base.Done():
		res.Cancelled = true
	}
	if res.TimedOut || res.Cancelled {
		reason := "command timed out"
		if res.Cancelled {
			reason = "command cancelled"
		}
		m.discard(b, reason)
		att.Close()
		if !done {
			<-copied
		}
		res.ExitCode = 137
		res.Duration = time.Since(start)
		res.StdoutTruncated, res.StderrTruncated = stdout.truncated, stderr.truncated
		return res, nil
	}
	res.Duration = time.Since(start)
	res.StdoutTruncated, res.StderrTruncated = stdout.truncated, stderr.truncated
	if copyErr != nil {
		return res, fmt.Errorf("sandbox exec: output: %w", copyErr)
	}
	code, err := m.exitCode(api, cr.ID)
	if err != nil {
		m.mu.Lock()
		gone := b.gone
		m.mu.Unlock()
		if gone || cerrdefs.IsNotFound(err) {
			return res, fmt.Errorf("sandbox exec: the sandbox was removed while the command ran (deleted, or another command in it timed out)")
		}
		return res, err
	}
	res.ExitCode = code
	if code == 137 {
		res.OOMKilled = m.oomSince(api, b.id, start)
	}
	return res, nil
}

// runAgent runs a command through the container's exec agent. The
// sidecar enforces the timeout, the output limit and the kill itself: a
// killed command whose Exit does not come within agentKillWait, like any
// protocol violation, ends the connection and the container is replaced.
func (m *Manager) runAgent(ctx context.Context, b *box, req ExecRequest, cwd string, env []string, timeout time.Duration) (ExecResult, error) {
	a := b.agent
	limit := b.spec.p.OutputLimitBytes
	stdout := &capWriter{w: req.Stdout, left: limit}
	stderr := &capWriter{w: req.Stderr, left: limit}
	start := time.Now()
	s, err := a.start(execagent.Start{Path: req.Argv[0], Argv: req.Argv, Env: env, Dir: cwd}, stdout, stderr)
	if err != nil {
		return ExecResult{}, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var res ExecResult
	select {
	case <-s.done:
	case <-timer.C:
		res.TimedOut = true
	case <-ctx.Done():
		res.Cancelled = true
	case <-m.base.Done():
		res.Cancelled = true
	case <-s.recv: // the receiver of the output is gone
		res.Cancelled = true
	}
	killed := res.TimedOut || res.Cancelled
	if killed {
		if a.kill(s) == nil {
			select {
			case <-s.done:
			case <-time.After(agentKillWait):
				a.fail(fmt.Errorf("a killed command's exit did not come within %s", agentKillWait))
			}
		}
		<-s.done
	}
	res.Duration = time.Since(start)
	res.StdoutTruncated, res.StderrTruncated = stdout.truncated, stderr.truncated
	s.mu.Lock()
	exited, e := s.exited, s.exit
	s.mu.Unlock()
	if killed {
		// Killed by the sidecar: reported as such even if the agent died
		// meanwhile (the container is then replaced).
		res.ExitCode = 137
		return res, nil
	}
	if !exited {
		return res, a.failure()
	}
	if e.Error != "" {
		io.WriteString(stderr, "clawguard-agent: "+e.Error+"\n")
	}
	res.ExitCode = e.Code
	if e.Code == 137 {
		api, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		res.OOMKilled = m.oomSince(api, b.id, start)
	}
	return res, nil
}

// exitCode waits for the engine to record the exit of an exec whose output
// has ended.
func (m *Manager) exitCode(ctx context.Context, execID string) (int, error) {
	for i := 0; ; i++ {
		ins, err := m.cli.ExecInspect(ctx, execID, client.ExecInspectOptions{})
		if err != nil {
			return 0, fmt.Errorf("sandbox exec: inspect: %w", err)
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		if i == 200 {
			return 0, fmt.Errorf("sandbox exec: output ended but the command still runs")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// oomSince reports whether the kernel OOM-killed something in the container
// since t. The engine's OOMKilled flag only covers the container's main
// process, so the "oom" event is what tells an exec was killed.
func (m *Manager) oomSince(ctx context.Context, id string, t time.Time) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ev := m.cli.Events(ctx, client.EventsListOptions{
		Since:   t.Format(time.RFC3339Nano),
		Until:   time.Now().Add(time.Second).Format(time.RFC3339Nano),
		Filters: make(client.Filters).Add("type", "container").Add("container", id).Add("event", "oom"),
	})
	for {
		select {
		case <-ev.Messages:
			return true
		case err := <-ev.Err:
			if err != nil && !errors.Is(err, io.EOF) {
				m.log.Warn("sandbox exec: oom check", "container", shortID(id), "err", err)
			}
			return false
		}
	}
}

func checkArgv(argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return fmt.Errorf("%w: argv is empty", ErrInvalidRequest)
	}
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%w: argv[%d] contains NUL", ErrInvalidRequest, i)
		}
	}
	return nil
}

// execCwd resolves the working directory lexically inside /workspace.
// Symlinks inside the sandbox resolve inside the sandbox's own filesystem,
// never the host's.
func execCwd(cwd string) (string, error) {
	if cwd == "" {
		return WorkspacePath, nil
	}
	if strings.IndexByte(cwd, 0) >= 0 {
		return "", fmt.Errorf("%w: cwd contains NUL", ErrInvalidRequest)
	}
	if !path.IsAbs(cwd) {
		cwd = path.Join(WorkspacePath, cwd)
	}
	c := path.Clean(cwd)
	if !within(c, WorkspacePath) {
		return "", fmt.Errorf("%w: cwd %q is outside %s", ErrInvalidRequest, cwd, WorkspacePath)
	}
	return c, nil
}

// execEnv builds a command's environment: PATH and HOME, the profile's env,
// the request's env, and the profile's secrets read now from the vault.
func (m *Manager) execEnv(s *spec, reqEnv map[string]string) ([]string, error) {
	env := []string{"PATH=" + s.p.Path, "HOME=/tmp"}
	env = append(env, sortedEnv(s.p.Env)...)
	for k, v := range reqEnv {
		if msg := checkEnvName(k); msg != "" {
			return nil, fmt.Errorf("%w: env %q: %s", ErrInvalidRequest, k, msg)
		}
		_, inEnv := s.p.Env[k]
		_, inSecrets := s.p.Secrets[k]
		if inEnv || inSecrets {
			return nil, fmt.Errorf("%w: env %q is set by the sandbox profile", ErrInvalidRequest, k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("%w: env %q: value contains NUL", ErrInvalidRequest, k)
		}
	}
	env = append(env, sortedEnv(reqEnv)...)
	if len(s.p.Secrets) > 0 && m.opts.Secrets == nil {
		return nil, fmt.Errorf("sandbox profile %q: secrets configured but no secret source (vault) is available", s.name)
	}
	names := make([]string, 0, len(s.p.Secrets))
	for k := range s.p.Secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, err := m.opts.Secrets.Get(s.p.Secrets[k])
		if err != nil {
			return nil, fmt.Errorf("sandbox profile %q: secret for %s: %w", s.name, k, err)
		}
		if strings.IndexByte(string(v), 0) >= 0 {
			return nil, fmt.Errorf("sandbox profile %q: secret for %s contains NUL", s.name, k)
		}
		env = append(env, k+"="+string(v))
	}
	return env, nil
}

func sortedEnv(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// capWriter passes on at most left bytes and swallows the rest, so a
// command that floods its output neither blocks nor fills memory.
type capWriter struct {
	w         io.Writer
	left      int64
	truncated bool
	err       error // the receiver failed: stop the command
}

func (c *capWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n := len(p)
	if int64(len(p)) > c.left {
		p = p[:c.left]
		c.truncated = true
	}
	if len(p) > 0 && c.w != nil {
		if _, err := c.w.Write(p); err != nil {
			c.err = err
			return 0, err
		}
	}
	c.left -= int64(len(p))
	return n, nil
}
