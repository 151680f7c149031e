package approvals

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Target is where a command runs.
type Target string

const (
	// TargetSandbox runs the command in the agent's Docker sandbox (the
	// default).
	TargetSandbox Target = "sandbox"
	// TargetHost runs it on the gateway host outside any sandbox: elevated
	// exec, only for agents with elevated: true.
	TargetHost Target = "host"
	// TargetNode runs it on the host of the node the sidecar is on,
	// outside any sandbox but not elevated: only for agents with node:
	// true.
	TargetNode Target = "node"
)

// Request is one exec an agent asks for.
type Request struct {
	// Identity is who sent it (the gate's X-Clawguard-Identity).
	Identity string `json:"identity,omitempty"`
	// Agent names the agent; it selects the agent's settings.
	Agent string `json:"agent"`
	// Node names the node the command would run on, for people.
	Node string `json:"node,omitempty"`
	// Argv is the command, executed as given (no shell).
	Argv []string `json:"argv"`
	// Cwd is the absolute working directory.
	Cwd string `json:"cwd"`
	// Env holds the variables the request sets on top of the target's
	// environment.
	Env map[string]string `json:"env,omitempty"`
	// Target is sandbox (default), host or node.
	Target Target `json:"target,omitempty"`
	// Path is the search path argv[0] is looked up in unless Env sets
	// PATH: the sidecar's host or node_exec path for host and node, the
	// sandbox profile's for sandboxes.
	Path string `json:"-"`
	// Resolver finds programs on the target's filesystem. Nil means the
	// host's for host and node requests; sandbox requests must supply one.
	Resolver Resolver `json:"-"`
}

var agentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (r *Request) lookupPath() string {
	if p, ok := r.Env["PATH"]; ok {
		return p
	}
	return r.Path
}

// check validates the request and returns the resolver to use.
func (r *Request) check() (Resolver, error) {
	if !agentName.MatchString(r.Agent) {
		return nil, fmt.Errorf("agent name %q is not valid (letters, digits, . _ -; at most 64)", r.Agent)
	}
	if len(r.Argv) == 0 || r.Argv[0] == "" {
		return nil, errors.New("empty argv")
	}
	for i, a := range r.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("argv[%d] contains a NUL byte, which no program can receive", i)
		}
	}
	if !path.IsAbs(r.Cwd) || strings.IndexByte(r.Cwd, 0) >= 0 {
		return nil, fmt.Errorf("cwd %q is not an absolute path", r.Cwd)
	}
	for k, v := range r.Env {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("env: %q is not a variable name", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("env %s contains a NUL byte", k)
		}
	}
	switch r.Target {
	case TargetHost, TargetNode:
		if r.Resolver == nil {
			return HostResolver(), nil
		}
	case TargetSandbox, "":
		if r.Resolver == nil {
			return nil, errors.New("no resolver for the sandbox's filesystem")
		}
	default:
		return nil, fmt.Errorf("target %q is not sandbox, host or node", r.Target)
	}
	return r.Resolver, nil
}

// Verdict is the outcome of a policy evaluation.
type Verdict string

const (
	// Allow: run the command.
	Allow Verdict = "allow"
	// Ask: a person decides (see Queue).
	Ask Verdict = "ask"
	// Deny: refuse it.
	Deny Verdict = "deny"
)

// Decision is the policy's answer to a Request. The first four fields are
// what `clawguard approvals check` prints.
type Decision struct {
	Verdict Verdict `json:"decision"`
	// Resolved is the absolute, symlink-free path of the judged program
	// (after unwrapping wrappers); empty if it could not be resolved.
	Resolved string `json:"resolved"`
	// Rule names the allow entry that matched ("agents.main.allow[0]").
	Rule string `json:"rule,omitempty"`
	// Reason explains the verdict to people.
	Reason string `json:"reason"`
	// Mode is the agent's mode.
	Mode Mode `json:"mode,omitempty"`
	// Exec is argv[0] of the request resolved: the file the caller should
	// execute (with argv unchanged), so the program that runs is the one
	// that was judged even if PATH lookup would differ.
	Exec string `json:"exec,omitempty"`
	// Args are the judged program's arguments, as args patterns see them.
	Args []string `json:"args,omitempty"`
	// Wrappers lists the wrappers unwrapped to find the program.
	Wrappers []string `json:"wrappers,omitempty"`
	// Elevated is set for commands on the gateway host: record each run.
	Elevated bool `json:"elevated,omitempty"`
	// ApprovalID names the ask that produced this decision, if any.
	ApprovalID string `json:"approval_id,omitempty"`
	// Command is argv rendered for people (see Quote).
	Command string `json:"command,omitempty"`

	class     class
	script    bool     // an interpreter in script-file form
	unsafeEnv []string // variables set beyond SafeEnv
	hidden    string   // first hidden character in Args, described
}

// Check is the public part of a decision that `clawguard approvals check`
// prints: exactly decision, resolved, rule (null when none) and reason.
type Check struct {
	Decision Verdict `json:"decision"`
	Resolved string  `json:"resolved"`
	Rule     *string `json:"rule"`
	Reason   string  `json:"reason"`
}

// Check returns the printed form of d.
func (d Decision) Check() Check {
	c := Check{Decision: d.Verdict, Resolved: d.Resolved, Reason: d.Reason}
	if d.Rule != "" {
		rule := d.Rule
		c.Rule = &rule
	}
	return c
}
