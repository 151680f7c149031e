package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/trail"
	"github.com/clawguard/clawguard/wire"
)

// Values of clawguard_approval_decisions_total{decision}: how asks ended.
var askOutcomes = []string{
	string(approvals.AllowOnce), string(approvals.AllowAlways), string(approvals.DenyChoice),
	"timeout",   // nobody answered within ask_timeout (ask_fallback applied)
	"withdrawn", // every waiting exec gave up (client gone)
	"shutdown",  // the sidecar stopped while it was pending
}

// approvalEngine is the exec approvals policy (package approvals) plugged
// into the sidecar: every exec is judged on the program it would run —
// resolved in the sandbox image for sandbox targets, on this host for
// elevated and node ones — unknown ones wait for a person (the /v1/approvals API),
// and approval decisions, denied execs and elevated runs go to the audit
// trail.
type approvalEngine struct {
	queue    *approvals.Queue
	store    *approvals.Store
	trail    *trail.Trail
	profiles interface {
		Profile(agent string) (sandbox.Profile, error)
	}
	images      *imageFiles
	configFile  string // the sidecar config, named in no_sandbox_profile refusals
	node        string
	gatewayHost bool
	hostPath    string
	nodeExec    bool // node_exec is on
	nodePath    string
	decisions   *prometheus.CounterVec
	log         *slog.Logger
}

// plugApprovals fills in o's Policy, Host and Handlers where the caller
// left them unset: the approvals engine on <state_dir>/approvals.json and
// the host runner — unless the config still uses the interim exec_allow
// list, which then stays the policy. When ctx ends the engine denies what
// is pending and ends the live feeds; the returned function, for after the
// server stopped, removes what it keeps in the engine.
func (o *DaemonOptions) plugApprovals(ctx context.Context, cfg *Config, cli *client.Client, mgr *sandbox.Manager, reg prometheus.Registerer) (func(), error) {
	if o.Policy != nil {
		return func() {}, nil
	}
	if len(cfg.ExecAllow) > 0 {
		o.Logger.Warn("exec_allow is set: it is the policy, and the approvals file is not used (remove exec_allow to use it)",
			"approvals_file", approvals.DefaultPath(o.StateDir))
		o.Policy = Allowlist(cfg.ExecAllow)
		return func() {}, nil
	}
	e, err := newApprovalEngine(ctx, o.StateDir, cfg, cli, mgr, reg, o.Logger)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, e.queue.Close)
	e.configFile = o.ConfigPath
	o.Policy = e
	host, node := hostRunners(cfg, e.trail, o.Logger)
	if o.Host == nil {
		o.Host = host
	}
	if o.Node == nil {
		o.Node = node
	}
	if o.Handlers == nil {
		o.Handlers = map[string]http.Handler{}
	}
	api := &approvals.API{Queue: e.queue, Caller: approvalCaller}
	for pattern, h := range api.Routes(wire.PathApprovals) {
		o.Handlers[pattern] = h
	}
	return e.images.close, nil
}

func newApprovalEngine(ctx context.Context, stateDir string, cfg *Config, cli *client.Client, mgr *sandbox.Manager, reg prometheus.Registerer, log *slog.Logger) (*approvalEngine, error) {
	store, err := approvals.OpenStore(approvals.DefaultPath(stateDir))
	if err != nil {
		return nil, err
	}
	trail, err := trail.Open(trail.Dir(stateDir), trail.Options{})
	if err != nil {
		return nil, err
	}
	node, _ := os.Hostname()
	e := &approvalEngine{
		store: store, trail: trail, profiles: mgr, images: newImageFiles(cli, cfg.Instance), node: node,
		gatewayHost: cfg.GatewayHost, hostPath: cfg.Host.Path, nodeExec: cfg.NodeExec != nil, log: log,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawguard_approval_decisions_total",
			Help: "Exec approval asks by how they ended: allow-once, allow-always, deny (by a person), timeout, withdrawn, shutdown.",
		}, []string{"decision"}),
	}
	if err := e.images.removeLeftovers(ctx); err != nil {
		return nil, err
	}
	e.queue = approvals.NewQueue(store, approvals.QueueOptions{MaxPending: 64, OnDecided: e.decided})
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clawguard_approvals_pending",
		Help: "Exec approval asks waiting for a person.",
	}, func() float64 { return float64(len(e.queue.Pending())) })
	for _, c := range []prometheus.Collector{e.decisions, pending} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("approvals metrics: %w", err)
		}
	}
	for _, d := range askOutcomes {
		e.decisions.WithLabelValues(d)
	}
	if e.nodeExec {
		e.nodePath = cfg.NodeExec.Path
	}
	log.Info("exec approvals", "file", store.Path(), "gateway_host", cfg.GatewayHost, "node_exec", e.nodeExec, "trail", trail.Dir())
	return e, nil
}

// approvalCaller admits administrators to the approvals API (HeaderRole)
// and names them for the record.
func approvalCaller(r *http.Request) (string, error) {
	id, ok := IdentityFrom(r.Context())
	if !ok {
		return "", errors.New("no identity")
	}
	if r.Header.Get(wire.HeaderRole) != wire.RoleAdmin {
		return "", fmt.Errorf("%s may not decide on approvals: use the gate's admin UI or API (/.clawguard/api/approvals) or `clawguard approvals` on the sidecar's host", id.Name)
	}
	return id.Name, nil
}

// decided records an ask's end in the trail and the metrics. It runs
// before the waiting execs resume.
func (e *approvalEngine) decided(a approvals.Approval) {
	outcome := string(a.Decision)
	switch {
	case a.State == approvals.StateTimedOut:
		outcome = "timeout"
	case a.State == approvals.StateWithdrawn:
		outcome = "withdrawn"
	case a.Decision == "" && a.State == approvals.StateAllowed:
		outcome = string(approvals.AllowAlways) // an entry added meanwhile matched it
	case a.Decision == "":
		outcome = "shutdown"
	}
	e.decisions.WithLabelValues(outcome).Inc()
	by := a.DecidedBy
	if by == "" {
		by = "sidecar" // the timeout, a withdrawal or the shutdown decided
	}
	if _, err := e.trail.Append(trail.KindApproval, by, a); err != nil {
		e.log.Error("approval decision not recorded in the audit trail", "approval_id", a.ID, "err", err)
	}
}

// Decide judges req with the approvals policy, waiting for a person when
// it says ask.
func (e *approvalEngine) Decide(ctx context.Context, req ExecRequest, who Identity) (Decision, error) {
	ar := approvals.Request{Identity: who.Name, Agent: req.Agent, Node: e.node, Argv: req.Argv, Env: req.Env}
	if refusal, code := e.target(ctx, req, &ar); refusal != "" {
		d := e.deny(req, who, ar, approvals.Decision{Command: approvals.Quote(req.Argv), Reason: refusal})
		d.Code = code
		return d, nil
	}
	d, _ := e.queue.Ask(ctx, ar) // a ctx error comes back as a deny with its reason
	if d.Verdict != approvals.Allow {
		return e.deny(req, who, ar, d), nil
	}
	out := Decision{Allow: true, Decision: DecisionAllow, Reason: d.Reason, ApprovalID: d.ApprovalID, Rule: d.Rule, Exec: d.Exec}
	if a, ok := e.queue.Get(d.ApprovalID); ok && a.Decision != "" {
		out.Decision = string(a.Decision)
	}
	return out, nil
}

// target completes ar for where req runs, or says why it cannot run there
// (and the refusal's API code when it is not "denied").
func (e *approvalEngine) target(ctx context.Context, req ExecRequest, ar *approvals.Request) (refusal, code string) {
	if req.Target == TargetHost || req.Target == TargetNode {
		return e.onHost(req, ar), ""
	}
	ar.Target, ar.Cwd = approvals.TargetSandbox, req.Cwd
	if !path.IsAbs(ar.Cwd) {
		ar.Cwd = path.Join(sandbox.WorkspacePath, ar.Cwd)
	}
	p, err := e.profiles.Profile(req.Agent)
	if errors.Is(err, sandbox.ErrNoProfile) {
		return noProfileMessage(err, e.configFile), codeNoProfile
	}
	if err != nil {
		return err.Error(), ""
	}
	ar.Path = p.Path
	if ar.Resolver, err = e.images.resolver(ctx, p); err != nil {
		return "cannot judge the command: " + err.Error(), ""
	}
	return "", ""
}

// onHost completes ar for a command on this host (target host or node), or
// says why it cannot run there.
func (e *approvalEngine) onHost(req ExecRequest, ar *approvals.Request) (refusal string) {
	ar.Target, ar.Cwd = approvals.Target(req.Target), req.Cwd
	if req.Target == TargetHost {
		ar.Path = e.hostPath
		switch {
		case !e.gatewayHost:
			return "host execution is off on this sidecar: it is not the gateway host's (gateway_host)"
		case !req.Elevated:
			return `target "host" runs outside any sandbox: the request must say "elevated": true`
		}
	} else {
		ar.Path = e.nodePath
		if !e.nodeExec {
			return `node execution is off on this sidecar: its config (` + e.configName() + `) has no "node_exec" block`
		}
	}
	if !path.IsAbs(req.Cwd) {
		return fmt.Sprintf("target %s needs an absolute cwd, got %q", req.Target, req.Cwd)
	}
	if err := checkHostEnv(req.Env); err != nil {
		return err.Error()
	}
	return ""
}

func (e *approvalEngine) configName() string {
	if e.configFile == "" {
		return "sidecar.json"
	}
	return e.configFile
}

// execRecord is the trail record of a denied exec.
type execRecord struct {
	Agent      string   `json:"agent"`
	Session    string   `json:"session,omitempty"`
	Node       string   `json:"node,omitempty"`
	Target     string   `json:"target"`
	Elevated   bool     `json:"elevated,omitempty"`
	Command    string   `json:"command"`
	Cwd        string   `json:"cwd,omitempty"`
	Env        []string `json:"env,omitempty"` // names only
	Resolved   string   `json:"resolved,omitempty"`
	ApprovalID string   `json:"approval_id,omitempty"`
	Reason     string   `json:"reason"`
	Method     string   `json:"method,omitempty"`
}

// deny records a refused exec and returns the refusal.
func (e *approvalEngine) deny(req ExecRequest, who Identity, ar approvals.Request, d approvals.Decision) Decision {
	rec := execRecord{
		Agent: req.Agent, Session: req.Session, Node: e.node, Target: req.Target, Elevated: req.Elevated,
		Command: d.Command, Cwd: ar.Cwd, Env: envNames(req.Env), Resolved: d.Resolved, ApprovalID: d.ApprovalID,
		Reason: d.Reason, Method: who.Method,
	}
	if _, err := e.trail.Append(trail.KindExecDenied, who.Name, rec); err != nil {
		e.log.Error("denied exec not recorded in the audit trail", "agent", req.Agent, "err", err)
	}
	return Decision{Decision: DecisionDeny, Reason: d.Reason, ApprovalID: d.ApprovalID}
}

var _ Policy = (*approvalEngine)(nil)
