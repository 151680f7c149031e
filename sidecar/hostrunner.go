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

// HostConfig configures elevated commands: commands on the gateway host
// itself, outside any sandbox (config key "host", used with gateway_host).
type HostConfig struct {
	// Path is PATH for host commands: the approvals policy looks argv[0]
	// up in it and the command gets it. Default
	// "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".
	Path string `json:"path,omitempty"`
	// Timeout is the longest a host command may run; a request may ask for
	// less. Default "60s", at most "24h".
	Timeout sandbox.Duration `json:"timeout,omitempty"`
	// OutputLimitBytes caps stdout and stderr of a host command, each.
	// Default 1 MiB, at most 16 MiB.
	OutputLimitBytes int64 `json:"output_limit_bytes,omitempty"`
}

// check fills in the defaults and validates.
func (h *HostConfig) check() error {
	if h.Path == "" {
		h.Path = sandbox.DefaultPath
	}
	for _, d := range strings.Split(h.Path, ":") {
		if !path.IsAbs(d) {
			return fmt.Errorf("host.path: %q has the entry %q; every entry must be an absolute directory", h.Path, d)
		}
	}
	switch t := time.Duration(h.Timeout); {
	case t == 0:
		h.Timeout = sandbox.Duration(sandbox.DefaultTimeout)
	case t < time.Second || t > 24*time.Hour:
		return fmt.Errorf("host.timeout: %s is out of range (1s to 24h)", t)
	}
	switch {
	case h.OutputLimitBytes == 0:
		h.OutputLimitBytes = sandbox.DefaultOutputLimit
	case h.OutputLimitBytes < 1 || h.OutputLimitBytes > sandbox.MaxOutputLimit:
		return fmt.Errorf("host.output_limit_bytes: %d is out of range (1 to %d)", h.OutputLimitBytes, sandbox.MaxOutputLimit)
	}
	return nil
}

// checkHostEnv refuses variables that would change which program a host
// command runs or what it loads, beyond what the policy judged.
func checkHostEnv(env map[string]string) error {
	for k := range env {
		if k == "PATH" || k == "HOME" || strings.HasPrefix(k, "LD_") {
			return fmt.Errorf("env %s cannot be set for host commands", k)
		}
	}
	return nil
}

// hostRunner runs elevated commands on this host. It runs only what the
// approvals policy allowed for this very request (the decision travels in
// the context, see withRun): the judged program (Decision.Exec) with argv
// unchanged, the configured PATH and a minimal environment — never the
// sidecar's own, which may hold the vault passphrase. Each run is written to
// the audit trail before it starts (no record, no run) and again when it
// ends.
type hostRunner struct {
	// enabled is gateway_host: elsewhere nothing runs on the host, whatever
	// a policy said.
	enabled bool
	cfg     HostConfig
	trail   *trail.Trail
	log     *slog.Logger
}

// elevatedRecord is the trail record of an elevated run.
type elevatedRecord struct {
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

// errHostDisabled: this sidecar is not the gateway host's.
var errHostDisabled = errors.New("host exec: this sidecar does not run commands on its host (gateway_host is off)")

// errNotJudged refuses a host run without an approvals decision.
var errNotJudged = errors.New("host exec: no approvals decision with a resolved program for this request; refusing to run")

// Run implements Runner.
func (h *hostRunner) Run(ctx context.Context, req ExecRequest, stdout, stderr io.Writer) (RunResult, error) {
	if !h.enabled {
		return RunResult{}, errHostDisabled
	}
	who, d, ok := runFrom(ctx)
	if !ok || !d.Allow || !path.IsAbs(d.Exec) || !req.Elevated || !path.IsAbs(req.Cwd) {
		return RunResult{}, errNotJudged
	}
	if err := checkHostEnv(req.Env); err != nil {
		return RunResult{}, fmt.Errorf("%w: %v", sandbox.ErrInvalidRequest, err)
	}
	timeout := time.Duration(h.cfg.Timeout)
	if t := time.Duration(req.TimeoutMS) * time.Millisecond; t > 0 && t < timeout {
		timeout = t
	}
	rec := elevatedRecord{
		Phase: "start", RunID: runID(), Agent: req.Agent, Session: req.Session, Command: approvals.Quote(req.Argv),
		Exec: d.Exec, Cwd: req.Cwd, Env: envNames(req.Env), Decision: d.Decision, Rule: d.Rule, ApprovalID: d.ApprovalID,
	}
	if _, err := h.trail.Append(trail.KindElevated, who.Name, rec); err != nil {
		return RunResult{}, fmt.Errorf("host exec: not run, the audit trail refused the record: %w", err)
	}

	res, runErr := h.run(ctx, req, d.Exec, timeout, stdout, stderr)
	rec.Phase, rec.DurationMS, rec.TimedOut, rec.Cancelled = "exit", res.Duration.Milliseconds(), res.TimedOut, res.Cancelled
	if runErr != nil {
		rec.Error = runErr.Error()
	} else {
		code := res.ExitCode
		rec.ExitCode = &code
	}
	if _, err := h.trail.Append(trail.KindElevated, who.Name, rec); err != nil {
		h.log.Error("elevated run ended but its exit could not be recorded", "run_id", rec.RunID, "err", err)
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
		return RunResult{}, fmt.Errorf("host exec: %w", err)
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
		return res, fmt.Errorf("host exec: %w", waitErr)
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

// env is the host command's environment: PATH, HOME and the request's own
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
