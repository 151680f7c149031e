package sidecar

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/wire"
)

func (s *Server) handleExec(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		s.metrics.total.WithLabelValues(TargetSandbox, resultError).Inc()
		writeError(w, &apiError{status: http.StatusRequestEntityTooLarge, code: "bad_request", msg: "request body: " + err.Error()})
		return
	}
	req, err := ParseExecRequest(body)
	if err != nil {
		s.metrics.total.WithLabelValues(TargetSandbox, resultError).Inc()
		writeError(w, &apiError{status: http.StatusBadRequest, code: "bad_request", msg: err.Error()})
		return
	}
	who, _ := IdentityFrom(r.Context())
	ctx, cancel := s.requestContext(r.Context())
	defer cancel()
	d, aerr := s.decide(ctx, req, who)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var stdout, stderr bytes.Buffer
	res, aerr := s.run(ctx, req, who, d, &stdout, &stderr)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	resp := execResponse(res, d)
	resp.Stdout, resp.Stderr = stdout.String(), stderr.String()
	wire.WriteJSON(w, http.StatusOK, resp)
}

// execResponse is the answer for a command that ran, without its output.
func execResponse(res RunResult, d Decision) ExecResponse {
	return ExecResponse{
		ExitCode: res.ExitCode, DurationMS: res.Duration.Milliseconds(), Decision: d.Decision, ApprovalID: d.ApprovalID,
		TimedOut: res.TimedOut, Cancelled: res.Cancelled, OOMKilled: res.OOMKilled,
		StdoutTruncated: res.StdoutTruncated, StderrTruncated: res.StderrTruncated, SandboxID: res.SandboxID,
	}
}

// requestContext ends when the client goes away or the server shuts down.
func (s *Server) requestContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(s.base, cancel)
	return ctx, func() { stop(); cancel() }
}

// decide refuses a request for a target this sidecar cannot run, then asks
// the policy. A policy error denies.
func (s *Server) decide(ctx context.Context, req ExecRequest, who Identity) (Decision, *apiError) {
	if s.runner(req.Target) == nil {
		s.metrics.total.WithLabelValues(req.Target, resultDenied).Inc()
		s.log.Info("exec refused", "agent", req.Agent, "identity", who.Name, "target", req.Target, "reason", req.Target+" exec disabled")
		return Decision{}, &apiError{status: http.StatusForbidden, code: req.Target + "_exec_disabled",
			msg: req.Target + " execution is not available on this sidecar", decision: &Decision{Decision: DecisionDeny}}
	}
	d, err := s.opts.Policy.Decide(ctx, req, who)
	if err != nil {
		s.metrics.total.WithLabelValues(req.Target, resultDenied).Inc()
		s.log.Error("exec policy failed; denied", "agent", req.Agent, "identity", who.Name, "err", err)
		return Decision{}, &apiError{status: http.StatusForbidden, code: "denied", msg: "policy error: " + err.Error(),
			decision: &Decision{Decision: DecisionDeny}}
	}
	if !d.Allow {
		if d.Decision == "" {
			d.Decision = DecisionDeny
		}
		s.metrics.total.WithLabelValues(req.Target, resultDenied).Inc()
		s.log.Info("exec denied", "agent", req.Agent, "identity", who.Name, "target", req.Target,
			"argv0", req.Argv[0], "decision", d.Decision, "approval_id", d.ApprovalID, "reason", d.Reason)
		code := "denied"
		if d.Code != "" {
			code = d.Code
		}
		return d, &apiError{status: http.StatusForbidden, code: code, msg: d.Reason, decision: &d}
	}
	return d, nil
}

func (s *Server) runner(target string) Runner {
	switch target {
	case TargetHost:
		return s.opts.Host
	case TargetNode:
		return s.opts.Node
	}
	return s.sandbox
}

// run executes an allowed request and accounts for it.
func (s *Server) run(ctx context.Context, req ExecRequest, who Identity, d Decision, stdout, stderr io.Writer) (RunResult, *apiError) {
	start := time.Now()
	res, err := s.runner(req.Target).Run(withRun(ctx, who, d), req, stdout, stderr)
	elapsed := time.Since(start)
	if err != nil {
		s.metrics.total.WithLabelValues(req.Target, resultError).Inc()
		s.log.Warn("exec failed", "agent", req.Agent, "session", req.Session, "identity", who.Name,
			"target", req.Target, "argv0", req.Argv[0], "err", err)
		return res, runError(err, s.opts.ConfigFile)
	}
	result := resultOf(res)
	s.metrics.total.WithLabelValues(req.Target, result).Inc()
	s.metrics.duration.Observe(elapsed.Seconds())
	// Only argv[0] is logged: arguments may carry secrets.
	s.log.Info("exec", "agent", req.Agent, "session", req.Session, "identity", who.Name, "method", who.Method,
		"target", req.Target, "argv0", req.Argv[0], "decision", d.Decision, "approval_id", d.ApprovalID,
		"result", result, "exit_code", res.ExitCode, "duration_ms", elapsed.Milliseconds(), "sandbox", res.SandboxID)
	return res, nil
}

// codeNoProfile is the API code of a sandbox command for an agent without a
// sandbox profile, whichever policy is in force.
const codeNoProfile = "no_sandbox_profile"

// noProfileMessage says which file to edit for a missing profile.
func noProfileMessage(err error, configFile string) string {
	if configFile == "" {
		configFile = "the sidecar config"
	}
	return err.Error() + `; add a profile for the agent (or "*") under "sandboxes" in ` + configFile + " and restart the sidecar"
}

// runError maps a Runner error to a status and code; configFile is named
// where editing it is the fix.
func runError(err error, configFile string) *apiError {
	switch {
	case errors.Is(err, sandbox.ErrInvalidRequest):
		return &apiError{status: http.StatusBadRequest, code: "bad_request", msg: err.Error()}
	case errors.Is(err, sandbox.ErrNoProfile):
		return &apiError{status: http.StatusForbidden, code: codeNoProfile, msg: noProfileMessage(err, configFile)}
	case errors.Is(err, sandbox.ErrLimit):
		return &apiError{status: http.StatusServiceUnavailable, code: "sandbox_limit", msg: err.Error()}
	case errors.Is(err, sandbox.ErrClosed), errors.Is(err, context.Canceled):
		return &apiError{status: http.StatusServiceUnavailable, code: "shutting_down", msg: err.Error()}
	}
	return &apiError{status: http.StatusBadGateway, code: "sandbox_error", msg: err.Error()}
}
