package sidecar

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/clawguard/clawguard/sandbox"
)

// Targets of an exec request.
const (
	TargetSandbox = "sandbox"
	TargetHost    = "host" // the gateway host, elevated (gateway_host)
	TargetNode    = "node" // this sidecar's own host, not elevated (node_exec)
)

// Request limits.
const (
	MaxRequestBytes = 1 << 20
	maxArgs         = 4096
	maxEnv          = 256
)

// ExecRequest is the body of POST /v1/exec and the first message of
// /v1/exec/stream.
type ExecRequest struct {
	// Agent is the agent the command runs for. Required.
	Agent string `json:"agent"`
	// Session is the agent's session; required for per-session sandboxes.
	Session string `json:"session,omitempty"`
	// Argv is executed as given, without a shell. Required.
	Argv []string `json:"argv"`
	// Cwd is the working directory inside /workspace. Default /workspace.
	// Targets host and node need an absolute path on the host.
	Cwd string `json:"cwd,omitempty"`
	// Env adds environment variables (not PATH, HOME, LD_*).
	Env map[string]string `json:"env,omitempty"`
	// TimeoutMS shortens the profile's timeout. Default: the profile's.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Target is "sandbox" (default), "host" (elevated, on the gateway
	// host's sidecar) or "node" (this sidecar's host, with node_exec).
	Target string `json:"target,omitempty"`
	// Elevated asks for host execution outside any sandbox; only with
	// target "host", and only where the policy enables it.
	Elevated bool `json:"elevated,omitempty"`
}

// ExecResponse is the answer of POST /v1/exec.
type ExecResponse struct {
	ExitCode        int    `json:"exit_code"`
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	DurationMS      int64  `json:"duration_ms"`
	Decision        string `json:"decision"`
	ApprovalID      string `json:"approval_id,omitempty"`
	TimedOut        bool   `json:"timed_out"`
	Cancelled       bool   `json:"cancelled,omitempty"`
	OOMKilled       bool   `json:"oom_killed"`
	StdoutTruncated bool   `json:"stdout_truncated"`
	StderrTruncated bool   `json:"stderr_truncated"`
	SandboxID       string `json:"sandbox_id,omitempty"`
}

// ParseExecRequest decodes and checks a request (unknown fields, missing
// agent or argv, bad names are errors), filling in the default target.
func ParseExecRequest(data []byte) (ExecRequest, error) {
	var req ExecRequest
	if err := strictDecode(data, &req); err != nil {
		return ExecRequest{}, fmt.Errorf("request: %w", jsonErr(data, err))
	}
	if err := req.check(); err != nil {
		return ExecRequest{}, fmt.Errorf("request: %w", err)
	}
	return req, nil
}

func (req *ExecRequest) check() error {
	if !sandbox.ValidName(req.Agent) {
		return fmt.Errorf("agent: %q must be 1 to 64 letters, digits, '.', '_' or '-'", req.Agent)
	}
	if req.Session != "" && !sandbox.ValidSession(req.Session) {
		return fmt.Errorf("session: %q must be 1 to 128 letters, digits, '.', '_', ':' or '-'", req.Session)
	}
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		return fmt.Errorf("argv: required, argv[0] non-empty")
	}
	if len(req.Argv) > maxArgs {
		return fmt.Errorf("argv: %d arguments, at most %d", len(req.Argv), maxArgs)
	}
	for i, a := range req.Argv {
		if strings.IndexByte(a, 0) >= 0 || !utf8.ValidString(a) {
			return fmt.Errorf("argv[%d]: contains NUL or invalid UTF-8", i)
		}
	}
	if len(req.Env) > maxEnv {
		return fmt.Errorf("env: %d variables, at most %d", len(req.Env), maxEnv)
	}
	if req.TimeoutMS < 0 {
		return fmt.Errorf("timeout_ms: negative")
	}
	switch req.Target {
	case "":
		req.Target = TargetSandbox
	case TargetSandbox, TargetHost, TargetNode:
	default:
		return fmt.Errorf("target: %q must be \"sandbox\", \"host\" or \"node\"", req.Target)
	}
	if req.Elevated && req.Target != TargetHost {
		return fmt.Errorf("elevated: only with target \"host\"")
	}
	return nil
}
