package openclawtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/coder/websocket"
)

// NodeInfo is a connected node as the double's registry has it.
type NodeInfo struct {
	NodeID      string    `json:"node_id"`
	ConnID      string    `json:"conn_id"`
	ClientID    string    `json:"client_id"`
	Mode        string    `json:"mode"`
	DisplayName string    `json:"display_name,omitempty"`
	Platform    string    `json:"platform"`
	Version     string    `json:"version"`
	Caps        []string  `json:"caps"`
	Commands    []string  `json:"commands"`
	Protocol    int       `json:"protocol"`
	AuthMethod  string    `json:"auth_method"`
	User        string    `json:"user,omitempty"`
	RemoteAddr  string    `json:"remote_addr"`
	ConnectedAt time.Time `json:"connected_at"`
	// Connects counts this node's connections since New, this one included.
	Connects int `json:"connects"`
}

// InvokeResult is a node's answer to an invoke, or the registry's own
// error (NOT_CONNECTED, TIMEOUT, a disconnection).
type InvokeResult struct {
	ID      string          `json:"id"`
	OK      bool            `json:"ok"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *openclaw.Error `json:"error,omitempty"`
}

// Received is a request a node sent: node.invoke.result or node.event.
type Received struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	// Late is a node.invoke.result for no waiting invoke (answered
	// {ok:true, ignored:true}, as OpenClaw does).
	Late bool      `json:"late,omitempty"`
	At   time.Time `json:"at"`
}

type pendingInvoke struct {
	conn    *conn
	command string
	done    chan InvokeResult
}

// Nodes lists the connected nodes.
func (s *Server) Nodes() []NodeInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NodeInfo, 0, len(s.nodes))
	for _, c := range s.nodes {
		out = append(out, c.node)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// WaitNode waits until node is connected and ok(info) is true (ok nil: any
// connection).
func (s *Server) WaitNode(ctx context.Context, nodeID string, ok func(NodeInfo) bool) (NodeInfo, error) {
	var info NodeInfo
	err := s.waitFor(ctx, func() bool {
		c := s.nodes[nodeID]
		if c == nil {
			return false
		}
		info = c.node
		return ok == nil || ok(info)
	})
	return info, err
}

// Invoke sends node.invoke.request to a connected node and waits for its
// node.invoke.result, at most timeout (default 30s; then TIMEOUT). A
// command the node did not declare is refused without sending, as
// OpenClaw's node command policy does. When ctx ends first the double
// sends node.invoke.cancel and returns ctx's error.
func (s *Server) Invoke(ctx context.Context, nodeID, command string, params any, timeout time.Duration, idempotencyKey string) (InvokeResult, error) {
	req := openclaw.InvokeRequest{ID: newID(), NodeID: nodeID, Command: command, IdempotencyKey: idempotencyKey}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return InvokeResult{}, fmt.Errorf("openclawtest: invoke params: %w", err)
		}
		p := string(b)
		req.ParamsJSON = &p
	}
	if timeout > 0 {
		ms := timeout.Milliseconds()
		req.TimeoutMs = &ms
	} else {
		timeout = 30 * time.Second
	}
	s.mu.Lock()
	c := s.nodes[nodeID]
	if c == nil {
		s.mu.Unlock()
		return fail(req.ID, openclaw.CodeNotConnected, "node not connected"), nil
	}
	if !slices.Contains(c.node.Commands, command) {
		s.mu.Unlock()
		return fail(req.ID, openclaw.CodeInvalidRequest, "node command not allowed"), nil
	}
	pi := &pendingInvoke{conn: c, command: command, done: make(chan InvokeResult, 1)}
	s.invokes[req.ID] = pi
	s.mu.Unlock()
	c.event(openclaw.EventInvokeRequest, req)

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-pi.done:
		return r, nil
	case <-t.C:
		s.forget(req.ID)
		return fail(req.ID, openclaw.CodeTimeout, "node invoke timed out"), nil
	case <-ctx.Done():
		s.forget(req.ID)
		c.event(openclaw.EventInvokeCancel, openclaw.InvokeCancel{InvokeID: req.ID, NodeID: nodeID})
		return InvokeResult{ID: req.ID}, ctx.Err()
	}
}

func fail(id, code, msg string) InvokeResult {
	return InvokeResult{ID: id, Error: &openclaw.Error{Code: code, Message: msg}}
}

func (s *Server) forget(id string) {
	s.mu.Lock()
	delete(s.invokes, id)
	s.mu.Unlock()
}

// invokeResult handles node.invoke.result: checked against OpenClaw's
// closed schema and against the caller's node id, matched to the waiting
// invoke (or answered {ok:true, ignored:true} when none waits).
func (c *conn) invokeResult(f openclaw.Frame) {
	var p struct {
		ID          string          `json:"id"`
		NodeID      string          `json:"nodeId"`
		OK          *bool           `json:"ok"`
		Payload     json.RawMessage `json:"payload"`
		PayloadJSON *string         `json:"payloadJSON"`
		Error       *openclaw.Error `json:"error"`
	}
	if err := strictDecode(f.Params, &p); err != nil || p.ID == "" || p.NodeID == "" || p.OK == nil {
		c.respond(f.ID, false, nil, &openclaw.ErrorShape{Code: openclaw.CodeInvalidRequest, Message: "invalid node.invoke.result params"})
		return
	}
	if p.NodeID != c.node.NodeID {
		c.respond(f.ID, false, nil, &openclaw.ErrorShape{Code: openclaw.CodeInvalidRequest, Message: "nodeId mismatch"})
		return
	}
	r := InvokeResult{ID: p.ID, OK: *p.OK, Payload: p.Payload, Error: p.Error}
	if p.PayloadJSON != nil {
		if !json.Valid([]byte(*p.PayloadJSON)) {
			c.respond(f.ID, false, nil, &openclaw.ErrorShape{Code: openclaw.CodeInvalidRequest, Message: "payloadJSON is not JSON"})
			return
		}
		r.Payload = json.RawMessage(*p.PayloadJSON)
	}
	s := c.s
	s.mu.Lock()
	pi := s.invokes[p.ID]
	late := pi == nil || pi.conn.node.NodeID != c.node.NodeID
	if !late {
		delete(s.invokes, p.ID)
	}
	s.received = append(s.received, Received{Method: f.Method, Params: f.Params, Late: late, At: time.Now()})
	s.notify()
	s.mu.Unlock()
	if late {
		c.respond(f.ID, true, map[string]bool{"ok": true, "ignored": true}, nil)
		return
	}
	pi.done <- r
	c.respond(f.ID, true, map[string]bool{"ok": true}, nil)
}

// nodeEvent records node.event ({event, payload?, payloadJSON?}).
func (c *conn) nodeEvent(f openclaw.Frame) {
	var p struct {
		Event       string          `json:"event"`
		Payload     json.RawMessage `json:"payload"`
		PayloadJSON *string         `json:"payloadJSON"`
	}
	if err := strictDecode(f.Params, &p); err != nil || p.Event == "" {
		c.respond(f.ID, false, nil, &openclaw.ErrorShape{Code: openclaw.CodeInvalidRequest, Message: "invalid node.event params"})
		return
	}
	c.s.mu.Lock()
	c.s.received = append(c.s.received, Received{Method: f.Method, Params: f.Params, At: time.Now()})
	c.s.notify()
	c.s.mu.Unlock()
	c.respond(f.ID, true, map[string]any{"ok": true, "event": p.Event, "handled": true}, nil)
}

func strictDecode(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("no params")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Received lists the requests nodes sent with method, in order.
func (s *Server) Received(method string) []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Received
	for _, r := range s.received {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// WaitReceived waits until nodes sent at least n requests with method.
func (s *Server) WaitReceived(ctx context.Context, method string, n int) ([]Received, error) {
	err := s.waitFor(ctx, func() bool {
		count := 0
		for _, r := range s.received {
			if r.Method == method {
				count++
			}
		}
		return count >= n
	})
	return s.Received(method), err
}

// SendRaw writes data as one text frame to a connected node, whatever it
// is: for tests of a misbehaving gateway.
func (s *Server) SendRaw(nodeID string, data []byte) error {
	s.mu.Lock()
	c := s.nodes[nodeID]
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("openclawtest: node %s not connected", nodeID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, data)
}

// SetTicks turns the tick events on (the default) or off, for tests of a
// silent gateway.
func (s *Server) SetTicks(on bool) {
	s.mu.Lock()
	s.silent = !on
	s.mu.Unlock()
}
