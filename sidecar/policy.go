package sidecar

import (
	"context"
	"fmt"
)

// Decisions a Policy reports. Policies may use further values (such as the
// approvals engine's "allow-once"); Allow is what the sidecar acts on.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// Policy decides whether a request may run. It is where the exec approvals
// engine plugs in; Decide may block while a person is asked (ctx ends when
// the client goes away or the sidecar shuts down). An error denies.
type Policy interface {
	Decide(ctx context.Context, req ExecRequest, who Identity) (Decision, error)
}

// Decision is a Policy's verdict.
type Decision struct {
	// Allow says the request runs; anything else is a refusal (HTTP 403).
	Allow bool `json:"allow"`
	// Decision names the verdict: "allow", "deny", "allow-once", …
	Decision string `json:"decision"`
	// Reason is shown to the caller, on refusals in particular.
	Reason string `json:"reason,omitempty"`
	// ApprovalID links the request to a person's approval, if one was asked.
	ApprovalID string `json:"approval_id,omitempty"`
	// Rule names the policy rule that allowed the request, if any.
	Rule string `json:"rule,omitempty"`
	// Exec is the program the policy judged for argv[0] (absolute, links
	// resolved). Runners that can choose the file apart from argv[0] (the
	// host runner) execute it, argv unchanged, so what runs is what was
	// judged. Empty: argv[0] as given.
	Exec string `json:"-"`
	// Code is a refusal's API error code. Default "denied".
	Code string `json:"-"`
}

// Allowlist is the sidecar's policy while no approvals engine is plugged
// in: a request runs only if an exec_allow rule names its agent (or "*"),
// its target and exactly its argv[0]. Everything else is denied; an empty
// Allowlist denies everything.
type Allowlist []AllowRule

// Decide matches req against the rules.
func (a Allowlist) Decide(_ context.Context, req ExecRequest, _ Identity) (Decision, error) {
	for _, r := range a {
		if (r.Agent == "*" || r.Agent == req.Agent) && r.Target == req.Target && r.Path == req.Argv[0] {
			return Decision{Allow: true, Decision: DecisionAllow, Reason: fmt.Sprintf("exec_allow: %s for %s", r.Path, r.Agent)}, nil
		}
	}
	return Decision{Decision: DecisionDeny, Reason: fmt.Sprintf("%s is not allowed for agent %q on %s (deny by default; see exec_allow)", req.Argv[0], req.Agent, req.Target)}, nil
}

var _ Policy = Allowlist(nil)
