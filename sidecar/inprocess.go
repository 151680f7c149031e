package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/clawguard/clawguard/approvals"
)

// ExecError is why Exec ran nothing: what POST /v1/exec answers with
// instead of a result. Timeouts and cancellations of a command that ran are
// not errors; ExecResponse says so.
type ExecError struct {
	// Status is the HTTP status /v1/exec answers with: 403 for a refusal,
	// 400 for a bad request, 502 or 503 when the command could not run.
	Status int
	// Code is the API error code: "denied", "no_sandbox_profile",
	// "host_exec_disabled", "node_exec_disabled" (refusals); "bad_request",
	// "sandbox_limit", "shutting_down", "sandbox_error".
	Code string
	// Reason says why, as /v1/exec's "error" field: for a refusal, the
	// policy's or the person's reason.
	Reason string
	// Decision is the policy's verdict on a refusal ("deny").
	Decision string
	// ApprovalID names the ask a person (or its timeout) answered, if any.
	ApprovalID string
}

func (e *ExecError) Error() string { return "exec " + e.Code + ": " + e.Reason }

// Denied reports a refusal: the policy, a person, an unanswered ask or
// the target said no. Otherwise the request was bad or could not run.
func (e *ExecError) Denied() bool { return e.Status == http.StatusForbidden }

func (e *apiError) execError() *ExecError {
	x := &ExecError{Status: e.status, Code: e.code, Reason: e.msg}
	if e.decision != nil {
		x.Decision, x.ApprovalID = e.decision.Decision, e.decision.ApprovalID
	}
	return x
}

// Exec runs req for who as POST /v1/exec does, in this process: the same
// checks, decision (asks wait in the approvals queue, where `clawguard
// approvals` and the admin UI see them), runner, metrics, logs and audit
// trail. An empty req.Target is "sandbox", as on /v1/exec; DefaultTarget
// says where the agent's commands go when the caller does not choose.
// stdout and stderr (nil: discarded) receive the output as it comes.
// onPending, if set, is called with the approval ID once the request
// waits for a person. Ending ctx gives up the wait (a refusal) or cancels
// the command (ExecResponse.Cancelled). Errors are *ExecError.
func (s *Server) Exec(ctx context.Context, who Identity, req ExecRequest, stdout, stderr io.Writer, onPending func(approvalID string)) (ExecResponse, error) {
	if err := req.check(); err != nil {
		s.metrics.total.WithLabelValues(TargetSandbox, resultError).Inc()
		return ExecResponse{}, (&apiError{status: http.StatusBadRequest, code: "bad_request", msg: "request: " + err.Error()}).execError()
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if !s.track() {
		return ExecResponse{}, (&apiError{status: http.StatusServiceUnavailable, code: "shutting_down", msg: "the sidecar is shutting down"}).execError()
	}
	defer s.detached.Done()
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	d, aerr := s.decideAsking(ctx, req, who, onPending, nil)
	if aerr != nil {
		return ExecResponse{}, aerr.execError()
	}
	res, aerr := s.run(ctx, req, who, d, stdout, stderr)
	if aerr != nil {
		return ExecResponse{}, aerr.execError()
	}
	return execResponse(res, d), nil
}

// DefaultTarget is where agent's commands run when the caller does not
// choose: "node" when node_exec is on and the agent's approvals say node:
// true, else "sandbox".
func (s *Server) DefaultTarget(agent string) string {
	e, ok := s.opts.Policy.(*approvalEngine)
	if !ok || !e.nodeExec || s.opts.Node == nil {
		return TargetSandbox
	}
	if p, err := e.store.Policy(); err == nil && p.Admits(agent, approvals.TargetNode) == nil {
		return TargetNode
	}
	return TargetSandbox
}

// Which resolves name (a bare program name or an absolute path) for agent
// on target the way the policy would before judging a command: in PATH of
// node_exec or host on this host (symlinks resolved), in the agent's
// sandbox image for "sandbox". The error says why not: the target is off
// or closed to the agent, or nothing executable is found.
func (s *Server) Which(ctx context.Context, agent, target, name string) (string, error) {
	e, ok := s.opts.Policy.(*approvalEngine)
	if !ok {
		return "", errors.New("which: the policy is not the approvals engine (exec_allow is set), which resolves no program names")
	}
	if strings.Contains(name, "/") && !path.IsAbs(name) {
		return "", fmt.Errorf("which %q: give a bare program name or an absolute path", name)
	}
	req := ExecRequest{Agent: agent, Argv: []string{name}, Target: target}
	if target == TargetHost || target == TargetNode {
		req.Cwd, req.Elevated = "/", target == TargetHost
	}
	if err := req.check(); err != nil {
		return "", fmt.Errorf("which %q: %w", name, err)
	}
	var ar approvals.Request
	if refusal, _ := e.target(ctx, req, &ar); refusal != "" {
		return "", fmt.Errorf("which %q: %s", name, refusal)
	}
	p, err := e.store.Policy()
	if err != nil {
		return "", fmt.Errorf("which %q: %w", name, err)
	}
	if err := p.Admits(agent, ar.Target); err != nil {
		return "", fmt.Errorf("which %q: %w", name, err)
	}
	resolver := ar.Resolver
	if resolver == nil {
		resolver = approvals.HostResolver()
	}
	return resolver.Resolve(name, ar.Cwd, ar.Path)
}
