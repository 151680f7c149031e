package approvals

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Choice is a person's answer to an ask.
type Choice string

const (
	// AllowOnce runs this request (and the identical ones waiting with it).
	AllowOnce Choice = "allow-once"
	// AllowAlways also records an allow entry for the resolved program and
	// an args pattern (by default exactly these arguments).
	AllowAlways Choice = "allow-always"
	// DenyChoice refuses it.
	DenyChoice Choice = "deny"
)

// State is where an ask stands.
type State string

const (
	StatePending   State = "pending"
	StateAllowed   State = "allowed"
	StateDenied    State = "denied"
	StateTimedOut  State = "timed_out" // ask_fallback applied; see Result
	StateWithdrawn State = "withdrawn" // every waiting exec gave up
)

// Approval is an ask as people see it, pending or decided.
type Approval struct {
	ID       string    `json:"id"`
	State    State     `json:"state"`
	Identity string    `json:"identity,omitempty"`
	Agent    string    `json:"agent"`
	Node     string    `json:"node,omitempty"`
	Argv     []string  `json:"argv"`
	Cwd      string    `json:"cwd"`
	Target   Target    `json:"target"`
	Env      []string  `json:"env,omitempty"` // names of the variables the request sets
	Resolved string    `json:"resolved"`
	Command  string    `json:"command"` // argv quoted for display, hidden characters escaped
	Reason   string    `json:"reason"`  // why the policy asks
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	Waiters  int       `json:"waiters"` // execs waiting on this ask (identical requests coalesce)
	// AllowAlways is the entry allow-always would record by default, or
	// AllowAlwaysRefused says why allow-always is not possible.
	AllowAlways        *Entry `json:"allow_always,omitempty"`
	AllowAlwaysRefused string `json:"allow_always_refused,omitempty"`

	Decision  Choice    `json:"decision,omitempty"`   // the person's choice
	DecidedBy string    `json:"decided_by,omitempty"` // who chose
	Decided   time.Time `json:"decided,omitzero"`
	Rule      string    `json:"rule,omitempty"`   // the entry that allowed it
	Result    string    `json:"result,omitempty"` // the final decision's reason
}

// Answer is a person's decision on an ask.
type Answer struct {
	Choice Choice `json:"decision"`
	// By identifies who answered, for the audit trail.
	By string `json:"by,omitempty"`
	// Args widens (or narrows) the args pattern allow-always records; it
	// must match the request's arguments. Empty: exactly these arguments.
	Args string `json:"args,omitempty"`
}

// Event is one change in the queue, for live feeds.
type Event struct {
	Type     string   `json:"type"` // "pending" or "decided"
	Approval Approval `json:"approval"`
}

// Errors of Answer.
var (
	ErrNotFound = errors.New("no such approval request")
	ErrDecided  = errors.New("approval request already decided")
)

// QueueOptions configure a Queue.
type QueueOptions struct {
	// MaxPending bounds the distinct asks waiting at once; further asks
	// are denied at once. Default: 64.
	MaxPending int
	// Recent is how many decided asks Get still reports. Default: 256.
	Recent int
	// OnDecided is called once per ask when it is decided (answered, timed
	// out or withdrawn), before the waiting execs resume: the place to
	// write the audit trail. It must not call the queue.
	OnDecided func(Approval)
}

// Queue holds asks until a person answers or ask_timeout passes.
type Queue struct {
	store *Store
	opts  QueueOptions

	mu      sync.Mutex
	pending map[string]*item // by ID
	byKey   map[string]*item // by request identity, for coalescing
	recent  []Approval       // decided, oldest first
	closed  bool

	subMu sync.Mutex
	subs  map[chan Event]struct{}
}

type item struct {
	a       Approval
	req     Request
	dec     Decision
	key     string
	timer   *time.Timer
	done    chan struct{}
	final   Decision
	busy    bool // allow-always is being written; expiry waits for it
	expired bool // the deadline passed while busy
}

// NewQueue returns a queue deciding with store's policy.
func NewQueue(store *Store, opts QueueOptions) *Queue {
	if opts.MaxPending <= 0 {
		opts.MaxPending = 64
	}
	if opts.Recent <= 0 {
		opts.Recent = 256
	}
	return &Queue{
		store:   store,
		opts:    opts,
		pending: map[string]*item{},
		byKey:   map[string]*item{},
		subs:    map[chan Event]struct{}{},
	}
}

// Ask evaluates req and, when the policy says ask, waits until a person
// answers, ask_timeout passes (then ask_fallback applies: deny, or
// allowlist re-evaluation — never approval) or ctx ends (deny, with
// ctx's error). Identical requests asked while one is pending wait on the
// same ask. The returned decision is never Ask.
func (q *Queue) Ask(ctx context.Context, req Request) (Decision, error) {
	p, err := q.store.Policy()
	if err != nil {
		return Decision{Verdict: Deny, Command: Quote(req.Argv), Reason: err.Error()}, nil
	}
	d := p.Evaluate(req)
	if d.Verdict != Ask {
		return d, nil
	}
	it, err := q.enqueue(req, d, p.AskTimeout())
	if err != nil {
		d.Verdict, d.Reason = Deny, err.Error()
		return d, nil
	}
	select {
	case <-it.done:
		return it.final, nil
	case <-ctx.Done():
		select {
		case <-it.done: // decided meanwhile: report that
			return it.final, nil
		default:
		}
		q.leave(it)
		d.Verdict, d.ApprovalID = Deny, it.a.ID
		d.Reason = "gave up waiting for a person: " + ctx.Err().Error()
		return d, ctx.Err()
	}
}

func (q *Queue) enqueue(req Request, d Decision, timeout time.Duration) (*item, error) {
	key := requestKey(&req, &d)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, errors.New("approval queue is closed")
	}
	if it, ok := q.byKey[key]; ok {
		it.a.Waiters++
		return it, nil
	}
	if len(q.pending) >= q.opts.MaxPending {
		return nil, fmt.Errorf("approval queue is full (%d pending asks); try again later", len(q.pending))
	}
	now := time.Now()
	it := &item{req: req, dec: d, key: key, done: make(chan struct{})}
	it.a = Approval{
		ID: newID(), State: StatePending,
		Identity: req.Identity, Agent: req.Agent, Node: req.Node,
		Argv: slices.Clone(req.Argv), Cwd: req.Cwd, Target: target(req.Target),
		Resolved: d.Resolved, Command: d.Command, Reason: d.Reason,
		Created: now, Expires: now.Add(timeout), Waiters: 1,
	}
	for name := range req.Env {
		it.a.Env = append(it.a.Env, name)
	}
	sort.Strings(it.a.Env)
	if e, err := allowAlwaysEntry(&d, ""); err != nil {
		it.a.AllowAlwaysRefused = err.Error()
	} else {
		it.a.AllowAlways = &e
	}
	it.final.ApprovalID = it.a.ID
	q.pending[it.a.ID] = it
	q.byKey[key] = it
	it.timer = time.AfterFunc(timeout, func() { q.expire(it) })
	q.publish(Event{Type: "pending", Approval: it.snapshot()})
	return it, nil
}

// requestKey identifies identical requests for coalescing.
func requestKey(req *Request, d *Decision) string {
	env := make([]string, 0, len(req.Env))
	for k, v := range req.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	b, _ := json.Marshal([]any{req.Identity, req.Agent, req.Node, target(req.Target), req.Cwd, req.Path, d.Exec, req.Argv, env})
	return string(b)
}

func target(t Target) Target {
	if t == "" {
		return TargetSandbox
	}
	return t
}

func (it *item) snapshot() Approval {
	a := it.a
	a.Argv = slices.Clone(a.Argv)
	a.Env = slices.Clone(a.Env)
	return a
}

// leave is called when a waiter gives up; the last one withdraws the ask.
func (q *Queue) leave(it *item) {
	q.mu.Lock()
	if q.pending[it.a.ID] != it {
		q.mu.Unlock()
		return
	}
	it.a.Waiters--
	if it.a.Waiters > 0 || it.busy {
		q.mu.Unlock()
		return
	}
	d := it.dec
	d.Verdict, d.Reason = Deny, "withdrawn: every waiting exec gave up"
	q.finishLocked(it, StateWithdrawn, "", "", d)
}

// expire applies ask_fallback to an ask nobody answered.
func (q *Queue) expire(it *item) {
	q.mu.Lock()
	if q.pending[it.a.ID] != it {
		q.mu.Unlock()
		return
	}
	if it.busy {
		it.expired = true
		q.mu.Unlock()
		return
	}
	q.expireLocked(it)
}

func (q *Queue) expireLocked(it *item) {
	timeout := it.a.Expires.Sub(it.a.Created)
	d := it.dec
	d.Verdict = Deny
	d.Reason = fmt.Sprintf("nobody answered within %s; ask_fallback deny", timeout)
	p, err := q.store.Policy()
	if err == nil && p.AskFallback() == FallbackAllowlist {
		d = p.evaluate(&it.req, ModeAllowlist)
		d.Reason = fmt.Sprintf("nobody answered within %s; ask_fallback allowlist: %s", timeout, d.Reason)
	}
	q.finishLocked(it, StateTimedOut, "", "", d)
}

// finishLocked records the final decision, drops the ask from the pending
// set and, after unlocking q.mu, calls OnDecided, publishes the event and
// releases the waiters.
func (q *Queue) finishLocked(it *item, state State, choice Choice, by string, d Decision) {
	if it.timer != nil {
		it.timer.Stop()
	}
	delete(q.pending, it.a.ID)
	delete(q.byKey, it.key)
	d.ApprovalID = it.a.ID
	it.final = d
	it.a.State, it.a.Decision, it.a.DecidedBy = state, choice, by
	it.a.Decided, it.a.Rule, it.a.Result = time.Now(), d.Rule, d.Reason
	snap := it.snapshot()
	q.recent = append(q.recent, snap)
	if len(q.recent) > q.opts.Recent {
		q.recent = q.recent[len(q.recent)-q.opts.Recent:]
	}
	q.mu.Unlock()
	if q.opts.OnDecided != nil {
		q.opts.OnDecided(snap)
	}
	q.publish(Event{Type: "decided", Approval: snap})
	close(it.done)
}

// Answer applies a person's decision to the pending ask id and returns the
// decided ask. allow-always first records the allow entry in the approval
// file; if that is refused (a bare shell, a pattern that would allow any
// code, hidden characters, variables it cannot pin) the ask stays pending
// and the error says why, so the person can allow once or deny instead.
func (q *Queue) Answer(id string, ans Answer) (Approval, error) {
	q.mu.Lock()
	it, ok := q.pending[id]
	if !ok {
		defer q.mu.Unlock()
		for _, a := range q.recent {
			if a.ID == id {
				return a, fmt.Errorf("%w: %s", ErrDecided, a.State)
			}
		}
		return Approval{}, ErrNotFound
	}
	snap := it.snapshot()
	if it.busy {
		q.mu.Unlock()
		return snap, fmt.Errorf("%w: an allow-always for it is being recorded", ErrDecided)
	}
	d := it.dec
	switch ans.Choice {
	case AllowOnce:
		d.Verdict, d.Reason = Allow, "allowed once by "+who(ans.By)
		q.finishLocked(it, StateAllowed, AllowOnce, ans.By, d)
	case DenyChoice:
		d.Verdict, d.Reason = Deny, "denied by "+who(ans.By)
		q.finishLocked(it, StateDenied, DenyChoice, ans.By, d)
	case AllowAlways:
		entry, err := allowAlwaysEntry(&d, ans.Args)
		if err != nil {
			q.mu.Unlock()
			return snap, err
		}
		it.busy = true
		q.mu.Unlock()
		rule, err := q.store.AddEntry(it.req.Agent, entry)
		q.mu.Lock()
		it.busy = false
		if q.pending[id] != it { // the queue closed meanwhile
			q.mu.Unlock()
			<-it.done
			return it.snapshot(), fmt.Errorf("%w: %s", ErrDecided, it.a.State)
		}
		if err != nil {
			switch {
			case it.expired:
				q.expireLocked(it)
			case it.a.Waiters == 0:
				w := d
				w.Verdict, w.Reason = Deny, "withdrawn: every waiting exec gave up"
				q.finishLocked(it, StateWithdrawn, "", "", w)
			default:
				snap = it.snapshot()
				q.mu.Unlock()
				return snap, err
			}
			<-it.done
			return it.snapshot(), err
		}
		d.Verdict, d.Rule = Allow, rule
		d.Reason = fmt.Sprintf("allowed always by %s: added %s (%s, args %s)", who(ans.By), rule, entry.Path, entry.Args)
		q.finishLocked(it, StateAllowed, AllowAlways, ans.By, d)
		q.settle()
	default:
		q.mu.Unlock()
		return snap, fmt.Errorf("decision %q is not one of allow-once, allow-always, deny", ans.Choice)
	}
	<-it.done
	return it.snapshot(), nil
}

// settle re-evaluates the pending asks after the policy changed and
// releases those an entry now allows.
func (q *Queue) settle() {
	p, err := q.store.Policy()
	if err != nil {
		return
	}
	q.mu.Lock()
	var ready []*item
	for _, it := range q.pending {
		if !it.busy {
			ready = append(ready, it)
		}
	}
	q.mu.Unlock()
	for _, it := range ready {
		d := p.Evaluate(it.req)
		if d.Verdict != Allow {
			continue
		}
		q.mu.Lock()
		if q.pending[it.a.ID] != it || it.busy {
			q.mu.Unlock()
			continue
		}
		q.finishLocked(it, StateAllowed, "", "", d)
	}
}

func who(by string) string {
	if by == "" {
		return "a person"
	}
	return by
}

// Pending lists the asks waiting for a person, oldest first.
func (q *Queue) Pending() []Approval {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Approval, 0, len(q.pending))
	for _, it := range q.pending {
		out = append(out, it.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// Recent lists the recently decided asks (at most QueueOptions.Recent),
// newest first.
func (q *Queue) Recent() []Approval {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := slices.Clone(q.recent)
	slices.Reverse(out)
	return out
}

// Get returns the ask id, pending or recently decided.
func (q *Queue) Get(id string) (Approval, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it, ok := q.pending[id]; ok {
		return it.snapshot(), true
	}
	for _, a := range q.recent {
		if a.ID == id {
			return a, true
		}
	}
	return Approval{}, false
}

// Subscribe returns a live feed of queue events and a function that ends
// it. A subscriber that falls more than buffer events behind is dropped
// (its channel closes): it should list Pending again and resubscribe.
func (q *Queue) Subscribe(buffer int) (<-chan Event, func()) {
	if buffer < 1 {
		buffer = 1
	}
	ch := make(chan Event, buffer)
	q.subMu.Lock()
	q.subs[ch] = struct{}{}
	q.subMu.Unlock()
	return ch, func() {
		q.subMu.Lock()
		defer q.subMu.Unlock()
		if _, ok := q.subs[ch]; ok {
			delete(q.subs, ch)
			close(ch)
		}
	}
}

func (q *Queue) publish(ev Event) {
	q.subMu.Lock()
	defer q.subMu.Unlock()
	for ch := range q.subs {
		select {
		case ch <- ev:
		default:
			delete(q.subs, ch)
			close(ch)
		}
	}
}

// Close denies every pending ask (the sidecar is stopping) and ends all
// subscriptions. Later asks are denied.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	var all []*item
	for _, it := range q.pending {
		all = append(all, it)
	}
	q.mu.Unlock()
	for _, it := range all {
		q.mu.Lock()
		if q.pending[it.a.ID] != it {
			q.mu.Unlock()
			continue
		}
		d := it.dec
		d.Verdict, d.Reason = Deny, "approval queue closed (sidecar stopping)"
		q.finishLocked(it, StateDenied, "", "", d)
	}
	q.subMu.Lock()
	for ch := range q.subs {
		delete(q.subs, ch)
		close(ch)
	}
	q.subMu.Unlock()
}

func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return "apr_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
