package sidecar

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/trail"
)

// HostConfig configures commands on this sidecar's own host, outside any
// sandbox: elevated ones (config key "host", used with gateway_host) and
// node ones (config key "node_exec").
type HostConfig struct {
	// Path is PATH for these commands: the approvals policy looks argv[0]
	// up in it and the command gets it. Default
	// "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".
	Path string `json:"path,omitempty"`
	// Timeout is the longest such a command may run; a request may ask
	// for less. Default "60s", at most "24h".
	Timeout sandbox.Duration `json:"timeout,omitempty"`
	// OutputLimitBytes caps stdout and stderr of such a command, each.
	// Default 1 MiB, at most 16 MiB.
	OutputLimitBytes int64 `json:"output_limit_bytes,omitempty"`
}

// check fills in the defaults and validates; key names the config block in
// errors.
func (h *HostConfig) check(key string) error {
	if h.Path == "" {
		h.Path = sandbox.DefaultPath
	}
	for _, d := range strings.Split(h.Path, ":") {
		if !path.IsAbs(d) {
			return fmt.Errorf("%s.path: %q has the entry %q; every entry must be an absolute directory", key, h.Path, d)
		}
	}
	switch t := time.Duration(h.Timeout); {
	case t == 0:
		h.Timeout = sandbox.Duration(sandbox.DefaultTimeout)
	case t < time.Second || t > 24*time.Hour:
		return fmt.Errorf("%s.timeout: %s is out of range (1s to 24h)", key, t)
	}
	switch {
	case h.OutputLimitBytes == 0:
		h.OutputLimitBytes = sandbox.DefaultOutputLimit
	case h.OutputLimitBytes < 1 || h.OutputLimitBytes > sandbox.MaxOutputLimit:
		return fmt.Errorf("%s.output_limit_bytes: %d is out of range (1 to %d)", key, h.OutputLimitBytes, sandbox.MaxOutputLimit)
	}
	return nil
}

// checkHostEnv refuses variables that would change which program a host or
// node command runs or what it loads, beyond what the policy judged.
func checkHostEnv(env map[string]string) error {
	for k := range env {
		if k == "PATH" || k == "HOME" || strings.HasPrefix(k, "LD_") {
			return fmt.Errorf("env %s cannot be set for commands on the host", k)
		}
	}
	return nil
}

// hostRunner runs commands on this host, outside any sandbox, for one of
// the two targets here: elevated commands (target "host", gateway_host) or
// node commands (target "node", node_exec). It runs only what the approvals
// policy allowed for this very request (the decision travels in the
// context, see withRun): the judged program (Decision.Exec) with argv
// unchanged, the configured PATH and a minimal environment — never the
// sidecar's own, which may hold the vault passphrase. Each run is written to
// the audit trail before it starts (no record, no run) and again when it
// ends.
type hostRunner struct {
	// target is TargetHost or TargetNode, the requests it runs.
	target string
	// enabled is gateway_host for host, node_exec for node: otherwise
	// nothing runs, whatever a policy said.
	enabled bool
	cfg     HostConfig
	trail   *trail.Trail
	log     *slog.Logger
}

// kindNodeExec is the trail kind of a node run (trail.KindElevated is that
// of an elevated one).
const kindNodeExec = "node_exec"

// hostRunners returns the runners of targets host and node for cfg. Both
// always exist, so such requests reach the policy and a refusal is
// recorded; each runs nothing unless its setting is on.
func hostRunners(cfg *Config, tr *trail.Trail, log *slog.Logger) (host, node *hostRunner) {
	host = &hostRunner{target: TargetHost, enabled: cfg.GatewayHost, cfg: cfg.Host, trail: tr, log: log}
	node = &hostRunner{target: TargetNode, enabled: cfg.NodeExec != nil, trail: tr, log: log}
	if cfg.NodeExec != nil {
		node.cfg = *cfg.NodeExec
	}
	return host, node
}

// runRecord is the trail record of an elevated or node run.
type runRecord struct {
	Phase      string   `json:"phase"` // "start" or "exit"
	RunID      string   `json:"run_id"`
	Agent      string   `json:"agent"`
	Session    string   `json:"session,omitempty"`
	Command    string   `json:"command"`
	Exec       string   `json:"exec"`
	Cwd        string   `json:"cwd"`
	Env        []string `json:"env,omitempty"` // names only
	Decision   string   `json:"decision,omitempty"`
	Rule       string   `json:"rule,omitempty"`
	ApprovalID string   `json:"approval_id,omitempty"`
	ExitCode   *int     `json:"exit_code,omitempty"`
	DurationMS int64    `json:"duration_ms,omitempty"`
	TimedOut   bool     `json:"timed_out,omitempty"`
	Cancelled  bool     `json:"cancelled,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// Refusals of a disabled host runner.
var (
	errHostDisabled = errors.New("host exec: this sidecar does not run commands on its host (gateway_host is off)")
	errNodeDisabled = errors.New("node exec: this sidecar does not run commands on its host (node_exec is off)")
)

// errNotJudged refuses a run without an approvals decision.
var errNotJudged = errors.New("no approvals decision with a resolved program for this request; refusing to run")

// Run implements Runner.
func (h *hostRunner) Run(ctx context.Context, req ExecRequest, stdout, stderr io.Writer) (RunResult, error) {
	if !h.enabled {
		if h.target == TargetNode {
			return RunResult{}, errNodeDisabled
		}
		return RunResult{}, errHostDisabled
	}
	who, d, ok := runFrom(ctx)
	// Elevated is what host requests must say and node requests must not.
	if !ok || !d.Allow || !path.IsAbs(d.Exec) || req.Target != h.target || req.Elevated != (h.target == TargetHost) || !path.IsAbs(req.Cwd) {
		return RunResult{}, fmt.Errorf("%s exec: %w", h.target, errNotJudged)
	}
	if err := checkHostEnv(req.Env); err != nil {
		return RunResult{}, fmt.Errorf("%w: %v", sandbox.ErrInvalidRequest, err)
	}
	timeout := time.Duration(h.cfg.Timeout)
	if t := time.Duration(req.TimeoutMS) * time.Millisecond; t > 0 && t < timeout {
		timeout = t
	}
	kind := trail.KindElevated
	if h.target == TargetNode {
		kind = kindNodeExec
	}
	rec := runRecord{
		Phase: "start", RunID: runID(), Agent: req.Agent, Session: req.Session, Command: approvals.Quote(req.Argv),
		Exec: d.Exec, Cwd: req.Cwd, Env: envNames(req.Env), Decision: d.Decision, Rule: d.Rule, ApprovalID: d.ApprovalID,
	}
	if _, err := h.trail.Append(kind, who.Name, rec); err != nil {
		return RunResult{}, fmt.Errorf("%s exec: not run, the audit trail refused the record: %w", h.target, err)
	}

	res, runErr := h.run(ctx, req, d.Exec, timeout, stdout, stderr)
	rec.Phase, rec.DurationMS, rec.TimedOut, rec.Cancelled = "exit", res.Duration.Milliseconds(), res.TimedOut, res.Cancelled
	if runErr != nil {
		rec.Error = runErr.Error()
	} else {
		code := res.ExitCode
		rec.ExitCode = &code
	}
	if _, err := h.trail.Append(kind, who.Name, rec); err != nil {
		h.log.Error("host run ended but its exit could not be recorded", "target", h.target, "run_id", rec.RunID, "err", err)
	}
	return res, runErr
}

// run starts the program in its own process group, so a timeout or a
// cancellation kills everything it started; output a child that left the
// group keeps open is cut off WaitDelay after the command ends.
func (h *hostRunner) run(ctx context.Context, req ExecRequest, exe string, timeout time.Duration, stdout, stderr io.Writer) (RunResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &cappedWriter{w: stdout, left: h.cfg.OutputLimitBytes}
	errOut := &cappedWriter{w: stderr, left: h.cfg.OutputLimitBytes}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Args = req.Argv
	cmd.Dir = req.Cwd
	cmd.Env = h.env(req.Env)
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return RunResult{}, fmt.Errorf("%s exec: %w", h.target, err)
	}
	waitErr := cmd.Wait()
	res := RunResult{
		Duration: time.Since(start), ExitCode: cmd.ProcessState.ExitCode(),
		StdoutTruncated: out.dropped, StderrTruncated: errOut.dropped,
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.TimedOut = true
	case ctx.Err() != nil:
		res.Cancelled = true
	case waitErr != nil && res.ExitCode < 0:
		return res, fmt.Errorf("%s exec: %w", h.target, waitErr)
	}
	return res, nil
}

// cappedWriter passes on the first left bytes and drops the rest. It never
// fails, so a command is never blocked by its output or by a receiver that
// went away.
type cappedWriter struct {
	w       io.Writer
	left    int64
	dropped bool
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	keep := min(int64(len(p)), max(c.left, 0))
	c.left -= keep
	c.dropped = c.dropped || keep < int64(len(p))
	if keep > 0 && c.w != nil {
		if _, err := c.w.Write(p[:keep]); err != nil {
			c.w = nil
		}
	}
	return len(p), nil
}

// env is the command's environment: PATH, HOME and the request's own
// variables, nothing inherited from the sidecar.
func (h *hostRunner) env(reqEnv map[string]string) []string {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/"
	}
	env := []string{"PATH=" + h.cfg.Path, "HOME=" + home}
	for _, k := range envNames(reqEnv) {
		env = append(env, k+"="+reqEnv[k])
	}
	return env
}

func envNames(env map[string]string) []string {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func runID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var _ Runner = (*hostRunner)(nil)
