package approvals

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawguard/clawguard/wire"
)

type queueEnv struct {
	root    string
	path    string
	store   *Store
	q       *Queue
	mu      sync.Mutex
	decided []Approval
}

func newQueueEnv(t *testing.T, config string, opts QueueOptions) *queueEnv {
	t.Helper()
	e := &queueEnv{root: testRoot(t), path: filepath.Join(t.TempDir(), wire.FileApprovals)}
	if err := os.WriteFile(e.path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.store, err = OpenStore(e.path); err != nil {
		t.Fatal(err)
	}
	opts.OnDecided = func(a Approval) {
		e.mu.Lock()
		e.decided = append(e.decided, a)
		e.mu.Unlock()
	}
	e.q = NewQueue(e.store, opts)
	t.Cleanup(e.q.Close)
	return e
}

func (e *queueEnv) req(argv ...string) Request {
	return Request{Identity: "device:abc", Agent: "main", Node: "gw", Argv: argv, Cwd: "/work",
		Path: "/usr/bin", Resolver: RootResolver{Root: e.root}}
}

type result struct {
	d   Decision
	err error
}

func (e *queueEnv) ask(ctx context.Context, r Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		d, err := e.q.Ask(ctx, r)
		ch <- result{d, err}
	}()
	return ch
}

// waitPending waits until n asks are pending and returns them.
func waitPending(t *testing.T, q *Queue, n int) []Approval {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := q.Pending()
		if len(p) == n && (n == 0 || p[0].Waiters > 0) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pending, want %d: %+v", len(p), n, p)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func get(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Ask did not return")
		return result{}
	}
}

const askConfig = `{"version":1,"defaults":{"mode":"ask","ask_timeout":"1m"},
  "agents":{"main":{"allow":[{"path":"/usr/bin/ls"}]}}}`

func TestAskAllowOnce(t *testing.T) {
	e := newQueueEnv(t, askConfig, QueueOptions{})
	d, err := e.q.Ask(context.Background(), e.req("ls"))
	if err != nil || d.Verdict != Allow || d.ApprovalID != "" {
		t.Fatalf("allowlisted command: %+v %v", d, err)
	}
	ch := e.ask(context.Background(), e.req("cat", "/etc/hostname"))
	p := waitPending(t, e.q, 1)[0]
	if p.Agent != "main" || p.Identity != "device:abc" || p.Node != "gw" || p.Resolved != "/usr/bin/cat" ||
		p.Cwd != "/work" || p.Target != TargetSandbox || p.Command != "cat /etc/hostname" || p.State != StatePending {
		t.Fatalf("pending %+v", p)
	}
	if p.AllowAlways == nil || p.AllowAlways.Args != `^/etc/hostname$` {
		t.Fatalf("suggested entry %+v (%s)", p.AllowAlways, p.AllowAlwaysRefused)
	}
	a, err := e.q.Answer(p.ID, Answer{Choice: AllowOnce, By: "user:ann"})
	if err != nil || a.State != StateAllowed || a.DecidedBy != "user:ann" {
		t.Fatalf("answer: %+v %v", a, err)
	}
	r := get(t, ch)
	if r.err != nil || r.d.Verdict != Allow || r.d.ApprovalID != p.ID || !strings.Contains(r.d.Reason, "allowed once by user:ann") {
		t.Fatalf("ask: %+v %v", r.d, r.err)
	}
	if _, err := e.q.Answer(p.ID, Answer{Choice: DenyChoice}); !errors.Is(err, ErrDecided) {
		t.Fatalf("second answer: %v", err)
	}
	if _, err := e.q.Answer("apr_nope", Answer{Choice: DenyChoice}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	// allow-once recorded nothing: the same command asks again.
	ch = e.ask(context.Background(), e.req("cat", "/etc/hostname"))
	p = waitPending(t, e.q, 1)[0]
	e.q.Answer(p.ID, Answer{Choice: DenyChoice, By: "user:ann"})
	r = get(t, ch)
	if r.d.Verdict != Deny || !strings.Contains(r.d.Reason, "denied by user:ann") {
		t.Fatalf("deny: %+v", r.d)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.decided) != 2 || e.decided[0].Decision != AllowOnce || e.decided[1].State != StateDenied {
		t.Fatalf("OnDecided saw %+v", e.decided)
	}
}

func TestAskTimeoutDenies(t *testing.T) {
	e := newQueueEnv(t, `{"version":1,"defaults":{"ask_timeout":"150ms"}}`, QueueOptions{})
	start := time.Now()
	d, err := e.q.Ask(context.Background(), e.req("cat"))
	if err != nil || d.Verdict != Deny || !strings.Contains(d.Reason, "nobody answered within 150ms; ask_fallback deny") {
		t.Fatalf("%+v %v", d, err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 3*time.Second {
		t.Fatalf("returned after %s", el)
	}
	a, ok := e.q.Get(d.ApprovalID)
	if !ok || a.State != StateTimedOut {
		t.Fatalf("after timeout: %+v", a)
	}
}

func TestAskFallbackAllowlistNeverApprovesUnmatched(t *testing.T) {
	e := newQueueEnv(t, `{"version":1,"defaults":{"ask_timeout":"200ms","ask_fallback":"allowlist"}}`, QueueOptions{})
	d, _ := e.q.Ask(context.Background(), e.req("cat"))
	if d.Verdict != Deny || !strings.Contains(d.Reason, "ask_fallback allowlist") {
		t.Fatalf("unmatched: %+v", d)
	}
	// An entry added while the ask waits (by hand, or by another
	// process) lets the fallback allow it.
	ch := e.ask(context.Background(), e.req("cat", "x"))
	waitPending(t, e.q, 1)
	if _, err := e.store.AddEntry("main", Entry{Path: "/usr/bin/cat", Args: "^x$"}); err != nil {
		t.Fatal(err)
	}
	r := get(t, ch)
	if r.d.Verdict != Allow || r.d.Rule != "agents.main.allow[0]" {
		t.Fatalf("fallback allowlist after entry: %+v", r.d)
	}
}

func TestAllowAlwaysPersistsExactEntry(t *testing.T) {
	e := newQueueEnv(t, askConfig, QueueOptions{})
	ch := e.ask(context.Background(), e.req("git", "commit", "-m", "fix it's bug"))
	p := waitPending(t, e.q, 1)[0]
	a, err := e.q.Answer(p.ID, Answer{Choice: AllowAlways, By: "user:ann"})
	if err != nil || a.Rule != "agents.main.allow[1]" {
		t.Fatalf("%+v %v", a, err)
	}
	if r := get(t, ch); r.d.Verdict != Allow || r.d.Rule != "agents.main.allow[1]" {
		t.Fatalf("%+v", r.d)
	}
	cfg, err := Load(e.path)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Agents["main"].Allow[1]
	if got.Path != "/usr/bin/git" || got.Args != `^commit -m 'fix it'\\''s bug'$` {
		t.Fatalf("entry %+v", got)
	}
	// The same command no longer asks; other arguments still do.
	d, _ := e.q.Ask(context.Background(), e.req("git", "commit", "-m", "fix it's bug"))
	if d.Verdict != Allow || d.ApprovalID != "" {
		t.Fatalf("second run: %+v", d)
	}
	ch = e.ask(context.Background(), e.req("git", "commit", "-m", "fix it's bug", "--amend"))
	p = waitPending(t, e.q, 1)[0]
	// Widening: the pattern must still match this request.
	if _, err := e.q.Answer(p.ID, Answer{Choice: AllowAlways, Args: "^push$"}); err == nil {
		t.Fatal("pattern not matching the request accepted")
	}
	if _, err := e.q.Answer(p.ID, Answer{Choice: AllowAlways, Args: "^commit .*$"}); err != nil {
		t.Fatal(err)
	}
	get(t, ch)
	if d, _ := e.q.Ask(context.Background(), e.req("git", "commit", "-a")); d.Verdict != Allow {
		t.Fatalf("widened pattern: %+v", d)
	}
}

func TestAllowAlwaysRefusedForShells(t *testing.T) {
	e := newQueueEnv(t, askConfig, QueueOptions{})
	for _, argv := range [][]string{{"sh"}, {"/bin/sh"}, {"sh", "-s"}, {"python3", "-"}, {"bash", "-i"}} {
		ch := e.ask(context.Background(), e.req(argv...))
		p := waitPending(t, e.q, 1)[0]
		if p.AllowAlways != nil || p.AllowAlwaysRefused == "" {
			t.Fatalf("%q: allow-always offered: %+v", argv, p.AllowAlways)
		}
		if _, err := e.q.Answer(p.ID, Answer{Choice: AllowAlways}); err == nil || !strings.Contains(err.Error(), "stdin") {
			t.Fatalf("%q: allow-always: %v", argv, err)
		}
		if _, err := e.q.Answer(p.ID, Answer{Choice: AllowAlways, Args: ".*"}); err == nil {
			t.Fatalf("%q: allow-always .* accepted", argv)
		}
		if still := e.q.Pending(); len(still) != 1 {
			t.Fatalf("%q: refused allow-always decided the ask", argv)
		}
		e.q.Answer(p.ID, Answer{Choice: DenyChoice})
		if r := get(t, ch); r.d.Verdict != Deny {
			t.Fatalf("%q: %+v", argv, r.d)
		}
	}
	// sh -c with code: the exact command may be recorded, a pattern
	// that would allow any code may not.
	ch := e.ask(context.Background(), e.req("sh", "-c", "echo hi"))
	p := waitPending(t, e.q, 1)[0]
	for _, wide := range []string{".*", "^-c .*$", "-c [a-z ]+|.*"} {
		if _, err := e.q.Answer(p.ID, Answer{Choice: AllowAlways, Args: wide}); err == nil || !strings.Contains(err.Error(), "any code") {
			t.Fatalf("pattern %s: %v", wide, err)
		}
	}
	if _, err := e.q.Answer(p.ID, Answer{Choice: AllowAlways}); err != nil {
		t.Fatal(err)
	}
	get(t, ch)
	cfg, _ := Load(e.path)
	if n := len(cfg.Agents["main"].Allow); n != 2 || cfg.Agents["main"].Allow[1].Args != `^-c 'echo hi'$` ||
		cfg.Agents["main"].Allow[1].Path != "/usr/bin/dash" {
		t.Fatalf("entries %+v", cfg.Agents["main"].Allow)
	}
	// Other code in the same shell still asks.
	ch = e.ask(context.Background(), e.req("sh", "-c", "echo hi; rm -rf /"))
	p = waitPending(t, e.q, 1)[0]
	e.q.Answer(p.ID, Answer{Choice: DenyChoice})
	get(t, ch)
}

func TestAllowAlwaysRefusesHiddenAndEnv(t *testing.T) {
	e := newQueueEnv(t, askConfig, QueueOptions{})
	r := e.req("cat", "a\u202eb")
	ch := e.ask(context.Background(), r)
	p := waitPending(t, e.q, 1)[0]
	if _, err := e.q.Answer(p.ID, Answer{Choice: AllowAlways, Args: ".*"}); err == nil || !strings.Contains(err.Error(), "U+202E") {
		t.Fatalf("hidden: %v", err)
	}
	if !strings.Contains(p.Command, `\u202E`) {
		t.Fatalf("prompt hides the override: %s", p.Command)
	}
	e.q.Answer(p.ID, Answer{Choice: DenyChoice})
	get(t, ch)

	r = e.req("node", "app.js")
	r.Env = map[string]string{"NODE_OPTIONS": "--require=/tmp/x.js"}
	ch = e.ask(context.Background(), r)
	p = waitPending(t, e.q, 1)[0]
	if len(p.Env) != 1 || p.Env[0] != "NODE_OPTIONS" {
		t.Fatalf("env names not shown: %+v", p.Env)
	}
	if _, err := e.q.Answer(p.ID, Answer{Choice: AllowAlways}); err == nil || !strings.Contains(err.Error(), "NODE_OPTIONS") {
		t.Fatalf("env: %v", err)
	}
	e.q.Answer(p.ID, Answer{Choice: AllowOnce})
	if r := get(t, ch); r.d.Verdict != Allow {
		t.Fatalf("%+v", r.d)
	}
}

func TestAllowAlwaysOnBrokenFileStaysPending(t *testing.T) {
	e := newQueueEnv(t, askConfig, QueueOptions{})
	ch := e.ask(context.Background(), e.req("cat"))
	p := waitPending(t, e.q, 1)[0]
	if err := os.WriteFile(e.path, []byte(`{"version":1,`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.q.Answer(p.ID, Answer{Choice: AllowAlways}); err == nil {
		t.Fatal("allow-always over a broken file succeeded")
	}
	if b, _ := os.ReadFile(e.path); string(b) != `{"version":1,` {
		t.Fatalf("broken file rewritten: %s", b)
	}
	if len(e.q.Pending()) != 1 {
		t.Fatal("ask lost")
	}
	e.q.Answer(p.ID, Answer{Choice: AllowOnce})
	if r := get(t, ch); r.d.Verdict != Allow {
		t.Fatalf("%+v", r.d)
	}
}

func TestIdenticalAsksCoalesce(t *testing.T) {
	e := newQueueEnv(t, askConfig, QueueOptions{})
	var chans []<-chan result
	for range 5 {
		chans = append(chans, e.ask(context.Background(), e.req("cat", "f")))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := e.q.Pending()
		if len(p) > 1 {
			t.Fatalf("%d asks for one command", len(p))
		}
		if len(p) == 1 && p[0].Waiters == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending %+v", p)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Another identity's identical command is its own ask.
	other := e.req("cat", "f")
	other.Identity = "device:other"
	och := e.ask(context.Background(), other)
	ps := waitPending(t, e.q, 2)
	first := ps[0]
	if first.Identity != "device:abc" {
		first = ps[1]
	}
	// allow-always on the first releases the second too: the new entry
	// matches it.
	if _, err := e.q.Answer(first.ID, Answer{Choice: AllowAlways}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chans {
		if r := get(t, ch); r.d.Verdict != Allow || r.d.ApprovalID != first.ID {
			t.Fatalf("%+v", r.d)
		}
	}
	if r := get(t, och); r.d.Verdict != Allow || r.d.Rule != "agents.main.allow[1]" {
		t.Fatalf("other identity: %+v", r.d)
	}
	waitPending(t, e.q, 0)
}

func TestQueueBoundAndCancel(t *testing.T) {
	e := newQueueEnv(t, askConfig, QueueOptions{MaxPending: 2})
	ctx, cancel := context.WithCancel(context.Background())
	a := e.ask(ctx, e.req("cat", "1"))
	b := e.ask(context.Background(), e.req("cat", "2"))
	waitPending(t, e.q, 2)
	d, err := e.q.Ask(context.Background(), e.req("cat", "3"))
	if err != nil || d.Verdict != Deny || !strings.Contains(d.Reason, "queue is full") {
		t.Fatalf("third ask: %+v %v", d, err)
	}
	cancel()
	r := get(t, a)
	if !errors.Is(r.err, context.Canceled) || r.d.Verdict != Deny {
		t.Fatalf("cancelled ask: %+v %v", r.d, r.err)
	}
	p := waitPending(t, e.q, 1)
	if a, ok := e.q.Get(r.d.ApprovalID); !ok || a.State != StateWithdrawn {
		t.Fatalf("withdrawn ask: %+v", a)
	}
	e.q.Close()
	if r := get(t, b); r.d.Verdict != Deny || !strings.Contains(r.d.Reason, "closed") {
		t.Fatalf("after close: %+v", r.d)
	}
	if a, _ := e.q.Get(p[0].ID); a.State != StateDenied {
		t.Fatalf("closed ask %+v", a)
	}
}

func TestSubscribeFeed(t *testing.T) {
	e := newQueueEnv(t, askConfig, QueueOptions{})
	events, stop := e.q.Subscribe(8)
	defer stop()
	slow, _ := e.q.Subscribe(1)
	ch := e.ask(context.Background(), e.req("cat"))
	ev := <-events
	if ev.Type != "pending" || ev.Approval.Resolved != "/usr/bin/cat" {
		t.Fatalf("first event %+v", ev)
	}
	e.q.Answer(ev.Approval.ID, Answer{Choice: DenyChoice, By: "user:ann"})
	get(t, ch)
	ev = <-events
	if ev.Type != "decided" || ev.Approval.State != StateDenied || ev.Approval.DecidedBy != "user:ann" {
		t.Fatalf("second event %+v", ev)
	}
	// The slow subscriber never read: it got one event, then was dropped.
	n := 0
	for range slow {
		n++
	}
	if n != 1 {
		t.Fatalf("slow subscriber got %d events before being dropped", n)
	}
}
