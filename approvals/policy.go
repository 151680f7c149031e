package approvals

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// Policy is a compiled, immutable Config, safe for concurrent use.
type Policy struct {
	cfg        *Config
	askTimeout time.Duration
	fallback   Fallback
	star       *agentPolicy            // "*", also used for unnamed agents
	agents     map[string]*agentPolicy // named agents
}

type agentPolicy struct {
	name     string
	mode     Mode
	elevated bool
	node     *bool // nil: as "*" says
	rules    ruleIndex
}

// NewPolicy validates and compiles cfg.
func NewPolicy(cfg *Config) (*Policy, error) { return compile(cfg) }

func compile(cfg *Config) (*Policy, error) {
	if cfg.Version != Version {
		return nil, fieldErr("version", "%d is not supported (this clawguard reads version %d)", cfg.Version, Version)
	}
	p := &Policy{
		cfg:        cfg,
		askTimeout: DefaultAskTimeout,
		fallback:   DefaultAskFallback,
		agents:     map[string]*agentPolicy{},
	}
	mode := DefaultMode
	if m := cfg.Defaults.Mode; m != "" {
		if err := checkMode("defaults.mode", m); err != nil {
			return nil, err
		}
		mode = m
	}
	if t := time.Duration(cfg.Defaults.AskTimeout); t != 0 {
		if t < 0 || t > MaxAskTimeout {
			return nil, fieldErr("defaults.ask_timeout", "%s is out of range (more than 0, at most %s)", t, MaxAskTimeout)
		}
		p.askTimeout = t
	}
	switch f := cfg.Defaults.AskFallback; f {
	case "":
	case FallbackDeny, FallbackAllowlist:
		p.fallback = f
	case Fallback(ModeFull):
		return nil, fieldErr("defaults.ask_fallback", "full is not allowed: a timeout must never approve what nobody looked at (use deny or allowlist)")
	default:
		return nil, fieldErr("defaults.ask_fallback", "%q is not one of deny, allowlist", f)
	}

	// Rules are numbered agent by agent in name order; a named agent's
	// own entries are tried before those of "*".
	cache := map[string]*regexp.Regexp{}
	order := 0
	p.star = &agentPolicy{name: AnyAgent, mode: mode}
	for _, name := range cfg.agentNames() {
		a := cfg.Agents[name]
		field := agentField(name)
		if a == nil {
			return nil, fieldErr(field, "must be an object")
		}
		ap := p.star
		if name != AnyAgent {
			if !agentName.MatchString(name) {
				return nil, fieldErr(field, "%q is not a valid agent name (letters, digits, . _ -; at most 64)", name)
			}
			ap = &agentPolicy{name: name}
			p.agents[name] = ap
		}
		if a.Mode != "" {
			if err := checkMode(field+".mode", a.Mode); err != nil {
				return nil, err
			}
			ap.mode = a.Mode
		}
		if a.Elevated != nil && *a.Elevated {
			if name == AnyAgent {
				return nil, fieldErr(field+".elevated", "elevated must be enabled per agent, not for every agent")
			}
			ap.elevated = true
		}
		if a.Node != nil {
			ap.node = new(*a.Node)
		}
		for i, e := range a.Allow {
			r, prefix, err := compileEntry(RuleName(name, i), e, cache)
			if err != nil {
				return nil, err
			}
			r.order = order
			order++
			ap.rules.add(r, prefix)
		}
	}
	for _, ap := range p.agents {
		if ap.mode == "" {
			ap.mode = p.star.mode
		}
		if ap.node == nil {
			ap.node = p.star.node
		}
	}
	return p, nil
}

func checkMode(field string, m Mode) error {
	switch m {
	case ModeAllowlist, ModeAsk, ModeFull:
		return nil
	}
	return fieldErr(field, "%q is not one of allowlist, ask, full", m)
}

func compileEntry(field string, e Entry, cache map[string]*regexp.Regexp) (*rule, string, error) {
	r := &rule{name: field, entry: e}
	if e.Path == "" {
		return nil, "", fieldErr(field+".path", "missing")
	}
	var prefix string
	var err error
	if r.glob, prefix, err = compileGlob(field+".path", e.Path); err != nil {
		return nil, "", err
	}
	if e.Args != "" {
		if r.args = cache[e.Args]; r.args == nil {
			if r.args, err = compileArgs(field+".args", e.Args); err != nil {
				return nil, "", err
			}
			cache[e.Args] = r.args
		}
	}
	for j, n := range e.Env {
		if !envPattern.MatchString(n) {
			return nil, "", fieldErr(fmt.Sprintf("%s.env[%d]", field, j), "%q is not a variable name or NAME* prefix", n)
		}
	}
	return r, prefix, nil
}

// Config returns the configuration the policy was compiled from; callers
// must not modify it.
func (p *Policy) Config() *Config { return p.cfg }

// AskTimeout is how long an ask waits for a person.
func (p *Policy) AskTimeout() time.Duration { return p.askTimeout }

// AskFallback is what an unanswered ask turns into.
func (p *Policy) AskFallback() Fallback { return p.fallback }

func (p *Policy) agent(name string) *agentPolicy {
	if ap, ok := p.agents[name]; ok {
		return ap
	}
	return p.star
}

// Admits says whether agent's settings let it run commands on target at
// all, before any allow entry is looked at: host needs elevated, node needs
// node; sandboxes need nothing. The error says what to set.
func (p *Policy) Admits(agent string, target Target) error {
	if reason := p.agent(agent).refuses(agent, target); reason != "" {
		return errors.New(reason)
	}
	return nil
}

// refuses says why the agent (named as requested) may not use target, or "".
func (ap *agentPolicy) refuses(agent string, target Target) string {
	switch {
	case target == TargetHost && !ap.elevated:
		return fmt.Sprintf("agent %q may not run commands on the gateway host: elevated is off (set %s.elevated to true to allow it)", agent, agentField(agent))
	case target == TargetNode && (ap.node == nil || !*ap.node):
		return fmt.Sprintf("agent %q may not run commands on this node host: node is off (set %s.node to true to allow it)", agent, agentField(agent))
	}
	return ""
}

// Evaluate decides on req. It never returns an error: anything it cannot
// judge (an unknown program, a malformed request) is denied with a reason.
func (p *Policy) Evaluate(req Request) Decision {
	return p.evaluate(&req, "")
}

// evaluate decides on req; a non-empty mode overrides the agent's (the
// allowlist re-evaluation of an ask fallback).
func (p *Policy) evaluate(req *Request, mode Mode) Decision {
	d := Decision{Verdict: Deny, Command: Quote(req.Argv)}
	resolver, err := req.check()
	if err != nil {
		d.Reason = "invalid request: " + err.Error()
		return d
	}
	ap := p.agent(req.Agent)
	d.Mode = ap.mode
	if mode != "" {
		d.Mode = mode
	}
	cmd, err := resolveCommand(req, resolver)
	d.Resolved, d.Exec, d.Args, d.Wrappers, d.class = cmd.path, cmd.exec, cmd.args, cmd.wrappers, cmd.class
	if reason := ap.refuses(req.Agent, req.Target); reason != "" {
		d.Reason = reason
		return d
	}
	d.Elevated = req.Target == TargetHost
	if err != nil {
		d.Reason = "cannot resolve the program: " + err.Error()
		return d
	}
	d.script = cmd.class == classInterpreter && scriptForm(cmd.args, cmd.cwd)
	d.unsafeEnv = unsafeEnv(cmd.envSet)
	d.hidden = findHidden(cmd.args)
	if d.Mode == ModeFull {
		d.Verdict, d.Reason = Allow, "mode full: every command runs"
		return d
	}

	joined := JoinArgs(cmd.args)
	ok := func(r *rule) bool { return d.check(r, cmd, joined) == matched }
	r, missed := ap.rules.find(cmd.path, ok)
	if r == nil && ap != p.star {
		var starMissed *rule
		r, starMissed = p.star.rules.find(cmd.path, ok)
		if missed == nil {
			missed = starMissed
		}
	}
	if r != nil {
		d.Verdict, d.Rule = Allow, r.name
		d.Reason = "allowed by " + r.String()
		return d
	}
	var reason strings.Builder
	fmt.Fprintf(&reason, "no allow entry matches %s", Quote(append([]string{cmd.path}, cmd.args...)))
	switch {
	case missed != nil:
		reason.WriteString(": " + d.explain(missed, cmd, joined))
		if hint := multicallHint(cmd); hint != "" {
			reason.WriteString(" (" + hint + ")")
		}
	case cmd.note != "":
		reason.WriteString(" (" + cmd.note + ")")
	default:
		if hint := multicallHint(cmd); hint != "" {
			reason.WriteString(" (" + hint + ")")
		} else if alias := p.aliasHint(ap, cmd.path); alias != "" {
			reason.WriteString(" (" + alias + ")")
		}
	}
	if d.Mode == ModeAsk {
		d.Verdict = Ask
		reason.WriteString("; a person must decide")
	} else {
		fmt.Fprintf(&reason, " (mode %s)", d.Mode)
	}
	d.Reason = reason.String()
	return d
}

// miss says why a rule whose path matches does not allow a command.
type miss int

const (
	matched miss = iota
	missHidden
	missArgs
	missRunner
	missInterpreter
	missEnv
)

// check tells whether rule r, whose path matches, allows the command. It
// is on the hot path, so it only classifies; explain words the result.
func (d *Decision) check(r *rule, cmd *command, joined string) miss {
	switch {
	case r.args != nil && d.hidden != "":
		return missHidden
	case r.args != nil && !r.args.MatchString(joined):
		return missArgs
	case r.args == nil && cmd.class == classCodeRunner:
		return missRunner
	case r.args == nil && cmd.class == classInterpreter && !d.script:
		return missInterpreter
	}
	for _, n := range d.unsafeEnv {
		if !envMatch(r.entry.Env, n) {
			return missEnv
		}
	}
	return matched
}

// explain says why rule r does not allow the command.
func (d *Decision) explain(r *rule, cmd *command, joined string) string {
	switch d.check(r, cmd, joined) {
	case missHidden:
		return fmt.Sprintf("%s has an args pattern, and %s: args patterns never match such arguments", r.name, d.hidden)
	case missArgs:
		return fmt.Sprintf("the argument string %q does not match %s's pattern %s", joined, r.name, r.entry.Args)
	case missRunner:
		if cmd.note != "" {
			return fmt.Sprintf("%s (%s) needs an entry with an args pattern; %s has none", cmd.invoked, cmd.note, r.name)
		}
		return fmt.Sprintf("%s takes code or a command in its arguments and needs an entry with an args pattern; %s has none", cmd.invoked, r.name)
	case missInterpreter:
		return fmt.Sprintf("%s with inline code, options or a program on stdin needs an entry with an args pattern; %s allows only a script file as first argument", cmd.invoked, r.name)
	case missEnv:
		for _, n := range d.unsafeEnv {
			if !envMatch(r.entry.Env, n) {
				return fmt.Sprintf("the request sets %s, which %s's env list does not name", n, r.name)
			}
		}
	}
	return ""
}

// multicallHint says, for a program invoked through a link to a multi-call
// binary (busybox: /bin/ls -> /bin/busybox), what an allow entry that
// matches it looks like: the binary's path, and args over the applet name
// and its arguments.
func multicallHint(cmd *command) string {
	if !multicall[family(path.Base(cmd.path))] || multicall[family(cmd.invoked)] || len(cmd.args) == 0 {
		return ""
	}
	return fmt.Sprintf("%s runs the multi-call binary %s, so it is judged as %s: an entry that matches names \"path\": %q with an \"args\" pattern over %q, the applet name first (for exactly these arguments \"args\": %q)",
		cmd.invoked, cmd.path, Quote(append([]string{cmd.path}, cmd.args...)), cmd.path, JoinArgs(cmd.args), ExactArgs(cmd.args))
}

// aliasHint explains a miss caused by an entry naming a program through a
// linked directory (/bin/ls where /bin is a link to /usr/bin): entries
// must name the resolved path.
func (p *Policy) aliasHint(ap *agentPolicy, resolved string) string {
	for _, pair := range [][2]string{{"/usr/bin/", "/bin/"}, {"/usr/sbin/", "/sbin/"}} {
		rest, ok := strings.CutPrefix(resolved, pair[0])
		if !ok {
			continue
		}
		alias := pair[1] + rest
		for _, a := range []*agentPolicy{ap, p.star} {
			if rs := a.rules.exact[alias]; len(rs) > 0 {
				return fmt.Sprintf("%s names %s, but entries must name the resolved path %s", rs[0].name, alias, resolved)
			}
		}
	}
	return ""
}
