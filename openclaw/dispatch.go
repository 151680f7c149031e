package openclaw

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Bounds of the invoke table. An execution (one Handler call) is
// remembered under its idempotency key — or, without one, its request id —
// while it runs and for ResultTTL after, so that a duplicate arriving then,
// over this connection or a later one, is answered from the stored result
// instead of running again. At most MaxExecutions are remembered (the
// oldest finished are forgotten first) and at most MaxRunning run at once
// (more are refused with UNAVAILABLE). Results and events that could not
// be sent because the gateway was away wait in an outbox of at most
// MaxOutbox requests, sent after the next hello-ok.
const (
	ResultTTL     = 10 * time.Minute
	MaxExecutions = 1024
	MaxRunning    = 64
	MaxOutbox     = 256
	maxIDLen      = 512
)

type invokeTable struct {
	n   *Node
	ctx context.Context // Run's
	wg  sync.WaitGroup

	mu      sync.Mutex
	byKey   map[string]*execution
	byID    map[string]*execution // request ids waiting for a running execution
	done    []*execution          // finished, oldest first
	running int
}

type execution struct {
	key     string
	sum     [sha256.Size]byte // of command and params: a key reused for another invoke is refused
	cancel  context.CancelCauseFunc
	waiters []string
	result  *InvokeResultParams // set when finished, without id
	expires time.Time
}

// outgoing is a request waiting for a connection.
type outgoing struct {
	method string
	params any
}

func newInvokeTable(n *Node) *invokeTable {
	return &invokeTable{n: n, byKey: map[string]*execution{}, byID: map[string]*execution{}}
}

func (t *invokeTable) start(ctx context.Context) {
	t.mu.Lock()
	t.ctx = ctx
	t.mu.Unlock()
}

func (t *invokeTable) wait() { t.wg.Wait() }

// request handles a node.invoke.request payload.
func (t *invokeTable) request(payload json.RawMessage) {
	n := t.n
	inv, err := parseInvoke(payload)
	if err != nil {
		n.log.Error("openclaw: malformed node.invoke.request skipped", "err", err)
		if inv.ID != "" && inv.NodeID == n.deviceID {
			n.deliverResult(inv.ID, resultParams(Fail(CodeInvalidRequest, err.Error())))
		}
		return
	}
	if inv.NodeID != n.deviceID {
		n.log.Error("openclaw: node.invoke.request for another node skipped", "for", inv.NodeID)
		return
	}
	if !n.allowed[inv.Command] {
		n.deliverResult(inv.ID, resultParams(Fail(CodeUnavailable, "command not supported")))
		return
	}
	key := inv.IdempotencyKey
	if key == "" {
		key = "id:" + inv.ID
	}
	sum := sha256.Sum256(append([]byte(inv.Command+"\x00"), inv.Params...))

	t.mu.Lock()
	t.expire(time.Now())
	if e, ok := t.byKey[key]; ok {
		switch {
		case e.sum != sum:
			t.mu.Unlock()
			n.deliverResult(inv.ID, resultParams(Fail(CodeInvalidRequest, "idempotency key reused for a different command or params")))
		case e.result != nil:
			r := *e.result
			t.mu.Unlock()
			n.log.Info("openclaw: duplicate invoke answered from its stored result", "id", inv.ID, "command", inv.Command)
			n.deliverResult(inv.ID, r)
		default:
			e.waiters = append(e.waiters, inv.ID)
			t.byID[inv.ID] = e
			t.mu.Unlock()
			n.log.Info("openclaw: duplicate invoke waits for the running one", "id", inv.ID, "command", inv.Command)
		}
		return
	}
	if t.running >= MaxRunning {
		t.mu.Unlock()
		n.deliverResult(inv.ID, resultParams(Fail(CodeUnavailable, fmt.Sprintf("node busy: %d invokes running", MaxRunning))))
		return
	}
	timeout := inv.Timeout
	if timeout <= 0 {
		timeout = DefaultInvokeTimeout
	}
	ctx, cancel := context.WithCancelCause(t.ctx)
	ctx, stop := context.WithTimeoutCause(ctx, timeout, ErrInvokeTimeout)
	e := &execution{key: key, sum: sum, cancel: cancel, waiters: []string{inv.ID}}
	t.byKey[key] = e
	t.byID[inv.ID] = e
	t.running++
	t.evict()
	t.wg.Add(1)
	t.mu.Unlock()

	n.log.Info("openclaw: invoke", "id", inv.ID, "command", inv.Command, "timeout", timeout)
	go func() {
		defer t.wg.Done()
		res := t.call(ctx, inv)
		stop()
		cancel(nil)
		t.finish(e, res)
	}()
}

// call runs the Handler; a panic becomes an UNAVAILABLE result.
func (t *invokeTable) call(ctx context.Context, inv Invoke) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			t.n.log.Error("openclaw: handler panicked", "command", inv.Command, "panic", p)
			res = Fail(CodeUnavailable, "node handler failed")
		}
	}()
	return t.n.Handler.Invoke(ctx, inv)
}

func (t *invokeTable) finish(e *execution, res Result) {
	rp := resultParams(res)
	t.mu.Lock()
	e.result = &rp
	e.expires = time.Now().Add(ResultTTL)
	waiters := e.waiters
	e.waiters = nil
	for _, id := range waiters {
		delete(t.byID, id)
	}
	t.running--
	t.done = append(t.done, e)
	t.mu.Unlock()

	for _, ev := range res.Events {
		t.n.deliver(outgoing{MethodNodeEvent, eventParams(ev)})
	}
	for _, id := range waiters {
		t.n.deliverResult(id, rp)
	}
}

// cancel ends the execution a request id waits for.
func (t *invokeTable) cancel(id string) {
	t.mu.Lock()
	e := t.byID[id]
	t.mu.Unlock()
	if e == nil {
		t.n.log.Debug("openclaw: node.invoke.cancel for no running invoke", "id", id)
		return
	}
	t.n.log.Info("openclaw: invoke canceled by the gateway", "id", id)
	e.cancel(ErrInvokeCanceled)
}

// expire forgets finished executions past their TTL.
func (t *invokeTable) expire(now time.Time) {
	i := 0
	for ; i < len(t.done) && now.After(t.done[i].expires); i++ {
		delete(t.byKey, t.done[i].key)
	}
	t.done = t.done[i:]
}

// evict forgets the oldest finished executions beyond MaxExecutions
// (MaxRunning < MaxExecutions, so there is always one to forget).
func (t *invokeTable) evict() {
	for len(t.byKey) > MaxExecutions && len(t.done) > 0 {
		delete(t.byKey, t.done[0].key)
		t.done = t.done[1:]
	}
}

// parseInvoke checks a node.invoke.request payload. On error, inv carries
// what could be read of the id and node id, to answer it.
func parseInvoke(payload json.RawMessage) (Invoke, error) {
	var req InvokeRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return Invoke{}, fmt.Errorf("node.invoke.request: %w", err)
	}
	inv := Invoke{ID: req.ID, NodeID: req.NodeID, Command: req.Command, IdempotencyKey: req.IdempotencyKey}
	switch {
	case req.ID == "" || req.NodeID == "" || req.Command == "":
		return inv, errors.New("node.invoke.request: id, nodeId and command are required")
	case len(req.ID) > maxIDLen || len(req.IdempotencyKey) > maxIDLen || len(req.Command) > maxIDLen:
		return Invoke{}, fmt.Errorf("node.invoke.request: id, command or idempotencyKey over %d bytes", maxIDLen)
	case req.TimeoutMs != nil && *req.TimeoutMs < 0:
		return inv, errors.New("node.invoke.request: negative timeoutMs")
	}
	if req.TimeoutMs != nil {
		inv.Timeout = time.Duration(*req.TimeoutMs) * time.Millisecond
	}
	switch {
	case req.ParamsJSON != nil && *req.ParamsJSON != "":
		if !json.Valid([]byte(*req.ParamsJSON)) {
			return inv, errors.New("node.invoke.request: paramsJSON is not JSON")
		}
		inv.Params = json.RawMessage(*req.ParamsJSON)
	case len(present(req.Params)) > 0:
		inv.Params = req.Params
	}
	return inv, nil
}

// resultParams is the node.invoke.result of a Result, without id and node
// id; a Result that cannot be sent as it is becomes an error.
func resultParams(res Result) InvokeResultParams {
	if !res.OK {
		e := res.Error
		if e == nil || e.Code == "" && e.Message == "" {
			e = &Error{Code: CodeUnavailable, Message: "invoke failed"}
		}
		return InvokeResultParams{Error: e}
	}
	rp := InvokeResultParams{OK: true}
	if res.Payload != nil {
		b, err := encodeJSON(res.Payload)
		if err != nil {
			return InvokeResultParams{Error: &Error{Code: CodeUnavailable, Message: "result payload: " + err.Error()}}
		}
		s := string(b)
		rp.PayloadJSON = &s
	}
	return rp
}

func eventParams(ev Event) NodeEventParams {
	p := NodeEventParams{Event: ev.Name}
	if ev.Payload != nil {
		if b, err := encodeJSON(ev.Payload); err == nil {
			s := string(b)
			p.PayloadJSON = &s
		}
	}
	return p
}

// deliverResult sends the result of request id.
func (n *Node) deliverResult(id string, rp InvokeResultParams) {
	rp.ID, rp.NodeID = id, n.deviceID
	n.deliver(outgoing{MethodInvokeResult, rp})
}

// deliver sends a request on the current connection, or keeps it in the
// outbox when there is none (or the send failed). A result too large for
// the gateway is replaced by an error saying so.
func (n *Node) deliver(o outgoing) {
	n.mu.Lock()
	s := n.sess
	n.mu.Unlock()
	if s != nil {
		err := s.send(o.method, o.params)
		var tl *tooLargeError
		if errors.As(err, &tl) {
			n.log.Error("openclaw: result too large for the gateway", "method", o.method, "err", err)
			if rp, ok := o.params.(InvokeResultParams); ok {
				err = s.send(o.method, InvokeResultParams{ID: rp.ID, NodeID: rp.NodeID,
					Error: &Error{Code: CodeUnavailable, Message: "result " + err.Error()}})
			}
		}
		if err == nil {
			return
		}
		n.log.Warn("openclaw: send failed; kept for the next connection", "method", o.method, "err", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.outbox) >= MaxOutbox {
		n.log.Error("openclaw: outbox full; dropping its oldest request", "method", n.outbox[0].method)
		n.outbox = n.outbox[1:]
	}
	n.outbox = append(n.outbox, o)
}

// attach makes s the current connection and sends the outbox on it.
func (n *Node) attach(s *session) {
	n.mu.Lock()
	n.sess = s
	out := n.outbox
	n.outbox = nil
	n.mu.Unlock()
	if len(out) > 0 {
		n.log.Info("openclaw: sending what finished while disconnected", "requests", len(out))
	}
	for _, o := range out {
		n.deliver(o)
	}
}

func (n *Node) detach(s *session) {
	n.mu.Lock()
	if n.sess == s {
		n.sess = nil
	}
	n.mu.Unlock()
}
