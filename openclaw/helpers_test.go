package openclaw_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/clawguard/clawguard/openclaw/openclawtest"
)

// memTokens is a TokenStore in memory.
type memTokens struct {
	mu    sync.Mutex
	token string
	saves int
}

func (m *memTokens) LoadDeviceToken() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.token, nil
}

func (m *memTokens) SaveDeviceToken(tok string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.token = tok
	m.saves++
	return nil
}

func (m *memTokens) get() (string, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.token, m.saves
}

// logBuf collects a node's log, for the test's output and for checks that
// no secret reaches it.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// states records a node's State changes.
type states struct {
	mu   sync.Mutex
	all  []openclaw.State
	cond chan struct{}
}

func (s *states) add(st openclaw.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, st)
	if s.cond != nil {
		close(s.cond)
	}
	s.cond = make(chan struct{})
}

// wait waits for a state that ok accepts.
func (s *states) wait(t *testing.T, what string, ok func(openclaw.State) bool) openclaw.State {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		s.mu.Lock()
		for _, st := range s.all {
			if ok(st) {
				s.mu.Unlock()
				return st
			}
		}
		if s.cond == nil {
			s.cond = make(chan struct{})
		}
		ch := s.cond
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no state %s; states: %+v", what, s.list())
		}
	}
}

func (s *states) list() []openclaw.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]openclaw.State(nil), s.all...)
}

// running is a Node started by run.
type running struct {
	node   *openclaw.Node
	states *states
	log    *logBuf
	stop   func() error
	done   chan error
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// run starts n (with fast backoff, a recorded state and a captured log
// unless set) and stops it at the test's end.
func run(t *testing.T, n *openclaw.Node) *running {
	t.Helper()
	r := &running{node: n, states: &states{}, log: &logBuf{}, done: make(chan error, 1)}
	if n.MinBackoff == 0 {
		n.MinBackoff, n.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	if n.Logger == nil {
		n.Logger = slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n.OnState = r.states.add
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- n.Run(ctx) }()
	var once sync.Once
	var err error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-r.done:
			case <-time.After(15 * time.Second):
				err = errors.New("Run did not return 15s after its ctx ended")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("node log:\n%s", r.log)
		}
	})
	return r
}

// pairedNode runs a node against gw, approves its pairing and waits until
// it is connected.
func pairedNode(t *testing.T, gw *openclawtest.Server, n *openclaw.Node) (*running, openclawtest.NodeInfo) {
	t.Helper()
	r := run(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := gw.WaitPairing(ctx)
	if err != nil {
		t.Fatalf("no pairing request: %v", err)
	}
	if err := gw.Approve(req.RequestID); err != nil {
		t.Fatal(err)
	}
	info, err := gw.WaitNode(ctx, n.ID(), nil)
	if err != nil {
		t.Fatalf("node did not connect after approval: %v\n%s", err, r.log)
	}
	return r, info
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// echo is a Handler answering every command with its params.
var echo = openclaw.HandlerFunc(func(ctx context.Context, inv openclaw.Invoke) openclaw.Result {
	return openclaw.Succeed(map[string]any{"command": inv.Command, "params": inv.Params})
})
