package sidecar

import (
	"context"
	"path"
	"slices"
	"sort"
	"sync"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/sandbox"
)

// askWatch follows the approvals queue while one stream's request is being
// decided, so the stream can say "approval_pending" (with the ask's ID) as
// soon as its exec waits for a person, and "approval_decided" once the
// person answered (or the ask timed out or was withdrawn).
//
// The queue coalesces identical requests into one ask; the ask a request
// waits on is the pending one with its identity, agent, node, target, cwd,
// argv and environment names — the ask a person sees.
type askWatch struct {
	e    *approvalEngine
	stop func()
	done chan struct{}

	mu sync.Mutex
	id string
}

// decideAsking is decide for a caller that hears about the ask the request
// waits on: pending(id) once it is queued, decided(id, outcome) once it
// ended (outcome as askOutcome). Either may be nil; with no pending
// nothing is watched.
func (s *Server) decideAsking(ctx context.Context, req ExecRequest, who Identity, pending func(id string), decided func(id, outcome string)) (Decision, *apiError) {
	var ask *askWatch
	if pending != nil {
		ask = s.watchAsk(req, who, pending)
	}
	d, aerr := s.decide(ctx, req, who)
	if ask != nil {
		if id, outcome := ask.end(); id != "" && decided != nil {
			decided(id, outcome)
		}
	}
	return d, aerr
}

// watchAsk starts watching for req's ask and calls pending(id) once, when
// it is found. Nil when the policy is not the approvals engine.
func (s *Server) watchAsk(req ExecRequest, who Identity, pending func(id string)) *askWatch {
	e, ok := s.opts.Policy.(*approvalEngine)
	if !ok {
		return nil
	}
	match := askMatcher(req, who, e.node)
	feed, stop := e.queue.Subscribe(64)
	w := &askWatch{e: e, stop: stop, done: make(chan struct{})}
	found := func(id string) {
		w.mu.Lock()
		first := w.id == ""
		if first {
			w.id = id
		}
		w.mu.Unlock()
		if first {
			pending(id)
		}
	}
	// An identical request may already wait: this one joins that ask.
	for _, a := range e.queue.Pending() {
		if match(a) {
			found(a.ID)
			break
		}
	}
	go func() {
		defer close(w.done)
		for ev := range feed { // ends with stop, or when the feed drops a slow reader
			if ev.Type == "pending" && match(ev.Approval) {
				found(ev.Approval.ID)
			}
		}
	}()
	return w
}

// end stops watching and returns the ask the request waited on ("" if it
// was decided without a person) and how that ask ended.
func (w *askWatch) end() (id, outcome string) {
	w.stop()
	<-w.done
	w.mu.Lock()
	id = w.id
	w.mu.Unlock()
	if id == "" {
		return "", ""
	}
	a, ok := w.e.queue.Get(id)
	if !ok {
		return id, "unknown"
	}
	return id, askOutcome(a)
}

// askOutcome names how an ask ended: the person's choice (allow-once,
// allow-always, deny), or timeout, withdrawn, shutdown; pending while it
// still waits (another waiter keeps it open).
func askOutcome(a approvals.Approval) string {
	switch {
	case a.State == approvals.StatePending:
		return "pending"
	case a.State == approvals.StateTimedOut:
		return "timeout"
	case a.State == approvals.StateWithdrawn:
		return "withdrawn"
	case a.Decision == "" && a.State == approvals.StateAllowed:
		return string(approvals.AllowAlways) // an entry added meanwhile matched it
	case a.Decision == "":
		return "shutdown"
	}
	return string(a.Decision)
}

// askMatcher reports whether an ask is the one req would be queued as
// (the fields approvalEngine.Decide and the queue fill in).
func askMatcher(req ExecRequest, who Identity, node string) func(approvals.Approval) bool {
	target, cwd := approvals.TargetSandbox, req.Cwd
	if req.Target == TargetHost || req.Target == TargetNode {
		target = approvals.Target(req.Target)
	} else if !path.IsAbs(cwd) {
		cwd = path.Join(sandbox.WorkspacePath, cwd)
	}
	env := make([]string, 0, len(req.Env))
	for k := range req.Env {
		env = append(env, k)
	}
	sort.Strings(env)
	return func(a approvals.Approval) bool {
		return a.State == approvals.StatePending && a.Identity == who.Name && a.Agent == req.Agent && a.Node == node &&
			a.Target == target && a.Cwd == cwd && slices.Equal(a.Argv, req.Argv) && slices.Equal(a.Env, env)
	}
}
