package sidecar

import (
	"context"
	"io"
	"time"

	"github.com/clawguard/clawguard/sandbox"
)

// Runner runs an allowed request on one target. The sandbox target is the
// sandbox manager; elevated host execution plugs in as another Runner
// (Options.Host). Output goes to stdout and stderr as it comes.
type Runner interface {
	Run(ctx context.Context, req ExecRequest, stdout, stderr io.Writer) (RunResult, error)
}

// RunResult is how a command ended.
type RunResult struct {
	ExitCode        int
	Duration        time.Duration
	TimedOut        bool
	Cancelled       bool
	OOMKilled       bool
	StdoutTruncated bool
	StderrTruncated bool
	SandboxID       string
}

// sandboxRunner runs requests in Docker sandboxes.
type sandboxRunner struct{ m *sandbox.Manager }

func (r sandboxRunner) Run(ctx context.Context, req ExecRequest, stdout, stderr io.Writer) (RunResult, error) {
	res, err := r.m.Exec(ctx, sandbox.ExecRequest{
		Agent: req.Agent, Session: req.Session, Argv: req.Argv, Cwd: req.Cwd, Env: req.Env,
		Timeout: time.Duration(req.TimeoutMS) * time.Millisecond, Stdout: stdout, Stderr: stderr,
	})
	return RunResult{
		ExitCode: res.ExitCode, Duration: res.Duration, TimedOut: res.TimedOut, Cancelled: res.Cancelled,
		OOMKilled: res.OOMKilled, StdoutTruncated: res.StdoutTruncated, StderrTruncated: res.StderrTruncated,
		SandboxID: res.SandboxID,
	}, err
}

var _ Runner = sandboxRunner{}
