package nodehost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/sidecar"
)

// nodeCwd is the working directory of a command on this host whose invoke
// names none: the daemon's own directory is arbitrary, "/" is the same on
// every node.
const nodeCwd = "/"

// command is an invoke's command as this node will run it: the agent, the
// session, the target the sidecar picks for the agent, and the cwd that
// target gets.
type command struct {
	agent, session, target, cwd string
}

// place decides where a command of agent (OpenClaw's agentId) in session
// (its sessionKey) with cwd runs. In a sandbox, a host path means nothing:
// only a path inside the workspace is kept, anything else becomes the
// workspace itself. The plan system.run.prepare returns carries the result,
// so the gateway pins (and shows for approval) what really runs.
func (h *Handler) place(agent, session, cwd string) command {
	c := command{agent: strings.TrimSpace(agent), session: sessionName(session), cwd: cwd}
	if c.agent == "" {
		c.agent = DefaultAgent
	}
	c.target = h.Sidecar.DefaultTarget(c.agent)
	switch {
	case c.target != sidecar.TargetSandbox:
		if c.cwd == "" {
			c.cwd = nodeCwd
		}
	case c.cwd == "", !inWorkspace(c.cwd):
		c.cwd = sandbox.WorkspacePath
	}
	return c
}

func inWorkspace(p string) bool {
	if !path.IsAbs(p) {
		p = path.Join(sandbox.WorkspacePath, p)
	}
	p = path.Clean(p)
	return p == sandbox.WorkspacePath || strings.HasPrefix(p, sandbox.WorkspacePath+"/")
}

// sessionName is OpenClaw's sessionKey as a sidecar session: kept when it
// is a valid session id (agent:main:main is), else a stable digest of it,
// so one OpenClaw session keeps one per-session sandbox.
func sessionName(key string) string {
	key = strings.TrimSpace(key)
	if key == "" || sandbox.ValidSession(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "openclaw-" + hex.EncodeToString(sum[:16])
}

// prepare answers system.run.prepare with the plan of the command as it
// will run. It decides nothing: the approvals judge at system.run.
func (h *Handler) prepare(inv openclaw.Invoke) openclaw.Result {
	p, err := openclaw.ParseSystemRunPrepare(inv.Params)
	if err != nil {
		return openclaw.ErrInvalidParams(err)
	}
	c := h.place(p.AgentID, p.SessionKey, p.Cwd)
	return openclaw.Succeed(openclaw.NewPlan(p, p.Command, c.cwd))
}

// run answers system.run: the command goes through the sidecar's exec path
// (the approvals decide; an ask waits for a person in clawguard), never
// around it. The gateway's own approved/approvalDecision do not count: the
// node's approvals file is the lock on this node.
func (h *Handler) run(ctx context.Context, inv openclaw.Invoke) openclaw.Result {
	p, err := openclaw.ParseSystemRun(inv.Params)
	if err != nil {
		return openclaw.ErrInvalidParams(err)
	}
	c := h.place(p.AgentID, p.SessionKey, p.Cwd)
	if plan := p.SystemRunPlan; plan != nil {
		if !slices.Equal(plan.Argv, p.Command) || (plan.Cwd != nil && *plan.Cwd != c.cwd) {
			return openclaw.Denied(p, openclaw.DenyPlanMiss, "the command differs from the plan prepared for it")
		}
	}
	req := sidecar.ExecRequest{Agent: c.agent, Session: c.session, Argv: p.Command, Cwd: c.cwd, Env: p.Env, Target: c.target}
	if p.TimeoutMs != nil && *p.TimeoutMs > 0 {
		req.TimeoutMS = *p.TimeoutMs
	}
	log := h.log().With("invoke", inv.ID, "agent", c.agent, "target", c.target, "argv0", p.Command[0])
	if p.Approved || p.ApprovalDecision != "" {
		log.Debug("the gateway's approval is not used; this node's approvals decide", "gateway_decision", p.ApprovalDecision)
	}
	var stdout, stderr bytes.Buffer
	resp, err := h.Sidecar.Exec(ctx, h.identity(), req, &stdout, &stderr, func(id string) {
		log.Info("system.run waits for a person: answer with `clawguard approvals allow-once|deny " + id + "` or in the admin UI")
	})
	var xerr *sidecar.ExecError
	switch {
	case errors.As(err, &xerr) && xerr.Denied():
		log.Info("system.run denied", "code", xerr.Code, "reason", xerr.Reason, "approval_id", xerr.ApprovalID)
		return openclaw.Denied(p, denyReason(xerr), xerr.Reason)
	case errors.As(err, &xerr) && xerr.Status == http.StatusBadRequest:
		return openclaw.Fail(openclaw.CodeInvalidRequest, openclaw.CommandSystemRun+": "+xerr.Reason)
	case err != nil:
		log.Warn("system.run could not run", "err", err)
		return openclaw.Finished(p, openclaw.SystemRunResult{Error: err.Error()})
	}
	res := openclaw.SystemRunResult{
		TimedOut:  resp.TimedOut || (resp.Cancelled && errors.Is(context.Cause(ctx), openclaw.ErrInvokeTimeout)),
		Stdout:    stdout.String(),
		Stderr:    stderr.String(),
		Truncated: resp.StdoutTruncated || resp.StderrTruncated,
	}
	if !res.TimedOut && !resp.Cancelled && !resp.OOMKilled {
		code := resp.ExitCode
		res.ExitCode, res.Success = &code, code == 0
	}
	switch {
	case resp.OOMKilled:
		res.Error = "the sandbox ran out of memory"
	case resp.Cancelled && !res.TimedOut:
		res.Error = "canceled"
	}
	log.Info("system.run finished", "decision", resp.Decision, "approval_id", resp.ApprovalID, "exit_code", resp.ExitCode, "timed_out", res.TimedOut)
	return openclaw.Finished(p, res)
}

// denyReason is OpenClaw's exec.denied reason for a refusal: a person (or
// an unanswered ask) said no, no allow entry matched, or the target is
// closed on this node.
func denyReason(e *sidecar.ExecError) string {
	switch {
	case e.ApprovalID != "":
		return openclaw.DenyApprovalRequired
	case e.Code == "denied":
		return openclaw.DenyAllowlistMiss
	}
	return openclaw.DenySecurityDeny
}
