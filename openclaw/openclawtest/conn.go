package openclawtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/coder/websocket"
)

// conn is one WebSocket connection to the double.
type conn struct {
	s     *Server
	ws    *websocket.Conn
	r     *http.Request
	id    string
	nonce string
	seq   atomic.Int64
	node  NodeInfo // set at hello
}

// OpenClaw's closed registries of client ids and modes (client-info.ts).
var (
	clientIDs = []string{"webchat-ui", "openclaw-control-ui", "openclaw-browser-copilot", "openclaw-tui",
		"webchat", "cli", "gateway-client", "openclaw-macos", "openclaw-linux", "openclaw-ios",
		"openclaw-watchos", "openclaw-android", "node-host", "openclaw-worker", "test", "fingerprint", "openclaw-probe"}
	clientModes = []string{"webchat", "cli", "ui", "backend", "node", "worker", "probe", "test"}
)

// signatureSkew is how far device.signedAt may be from the gateway's clock
// (DEVICE_SIGNATURE_SKEW_MS).
const signatureSkew = 2 * time.Minute

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	// Nodes send no Origin; OpenClaw checks origins only for browser clients.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(openclaw.MaxPreConnectFrame)
	c := &conn{s: s, ws: ws, r: r, id: newID(), nonce: newID()}
	s.mu.Lock()
	s.conns[c] = true
	s.mu.Unlock()
	defer s.drop(c)

	c.event(openclaw.EventChallenge, openclaw.Challenge{Nonce: c.nonce, TS: time.Now().UnixMilli()})
	hctx, cancel := context.WithTimeout(context.Background(), s.opts.HandshakeTimeout)
	if !c.handshake(hctx) {
		cancel()
		return
	}
	cancel()
	ws.SetReadLimit(int64(s.opts.MaxPayload))
	done := make(chan struct{})
	defer close(done)
	go c.ticks(done)
	c.serve()
}

// drop forgets a closed connection and ends the invokes waiting on it.
func (s *Server) drop(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if c.node.NodeID != "" && s.nodes[c.node.NodeID] == c {
		delete(s.nodes, c.node.NodeID)
		for id, pi := range s.invokes {
			if pi.conn == c {
				delete(s.invokes, id)
				pi.done <- InvokeResult{ID: id, Error: &openclaw.Error{Code: openclaw.CodeUnavailable,
					Message: "node disconnected (" + pi.command + ")"}}
			}
		}
	}
	s.notify()
}

// handshake reads the connect request and answers it; false when the
// connection was refused (and closed).
func (c *conn) handshake(ctx context.Context) bool {
	typ, data, err := c.ws.Read(ctx)
	if err != nil {
		return false
	}
	f, err := openclaw.ParseFrame(data)
	if typ != websocket.MessageText || err != nil || f.Type != openclaw.TypeRequest || f.Method != openclaw.MethodConnect {
		id := f.ID
		if id == "" {
			id = "invalid"
		}
		c.refuse(id, openclaw.CodeInvalidRequest, "invalid handshake: first request must be connect", nil, websocket.StatusPolicyViolation)
		return false
	}
	var p openclaw.ConnectParams
	dec := json.NewDecoder(bytes.NewReader(f.Params))
	dec.DisallowUnknownFields() // OpenClaw's connect schema is closed
	if err := dec.Decode(&p); err != nil || !validConnect(p) {
		msg := "invalid connect params"
		if err != nil {
			msg += ": " + err.Error()
		}
		c.refuse(f.ID, openclaw.CodeInvalidRequest, msg, nil, websocket.StatusPolicyViolation)
		return false
	}
	protocol, ok := c.admit(f.ID, p)
	if !ok {
		return false
	}
	device, ok := c.proveDevice(f.ID, p)
	if !ok {
		return false
	}
	method, user, ok := c.authenticate(f.ID, p)
	if !ok {
		return false
	}
	token, ok := c.pair(f.ID, p, device)
	if !ok {
		return false
	}
	c.hello(f.ID, p, protocol, method, user, token)
	return true
}

func validConnect(p openclaw.ConnectParams) bool {
	return p.MinProtocol >= 1 && p.MaxProtocol >= 1 && p.Client.Version != "" && p.Client.Platform != "" &&
		slices.Contains(clientIDs, p.Client.ID) && slices.Contains(clientModes, p.Client.Mode)
}

// admit is OpenClaw's protocol negotiation and role check: the current
// protocol, or for node-role node-mode clients the previous one.
func (c *conn) admit(id string, p openclaw.ConnectParams) (int, bool) {
	current := p.MaxProtocol >= openclaw.ProtocolVersion && p.MinProtocol <= openclaw.ProtocolVersion
	previousNode := p.Role == openclaw.RoleNode && p.Client.Mode == openclaw.ClientMode &&
		p.MaxProtocol >= openclaw.MinNodeProtocol && p.MinProtocol <= openclaw.MinNodeProtocol
	if !current && !previousNode {
		c.refuse(id, openclaw.CodeInvalidRequest, "protocol mismatch", map[string]any{
			"code": openclaw.DetailProtocolMismatch, "clientMinProtocol": p.MinProtocol,
			"clientMaxProtocol": p.MaxProtocol, "expectedProtocol": openclaw.ProtocolVersion,
		}, websocket.StatusProtocolError)
		return 0, false
	}
	if role := p.Role; role != "" && role != openclaw.RoleNode && role != "operator" {
		c.refuse(id, openclaw.CodeInvalidRequest, "invalid role", nil, websocket.StatusPolicyViolation)
		return 0, false
	}
	if current {
		return openclaw.ProtocolVersion, true
	}
	return openclaw.MinNodeProtocol, true
}

// proveDevice checks the device proof in OpenClaw's order: identity,
// signature age, nonce, signature (v3, then v2), public key.
func (c *conn) proveDevice(id string, p openclaw.ConnectParams) (string, bool) {
	d := p.Device
	if d == nil {
		c.refuse(id, openclaw.CodeNotPaired, "device identity required",
			map[string]any{"code": openclaw.DetailDeviceIdentityRequired}, websocket.StatusPolicyViolation)
		return "", false
	}
	invalid := func(reason, code, message string) (string, bool) {
		c.refuse(id, openclaw.CodeInvalidRequest, message, map[string]any{"code": code, "reason": reason}, websocket.StatusPolicyViolation)
		return "", false
	}
	raw, err := openclaw.DecodeKey(d.PublicKey)
	if err != nil || openclaw.DeviceID(raw) != d.ID {
		return invalid("device-id-mismatch", openclaw.DetailDeviceIDMismatch, "device identity mismatch")
	}
	if skew := time.Since(time.UnixMilli(d.SignedAt)); skew > signatureSkew || skew < -signatureSkew {
		return invalid("device-signature-stale", openclaw.DetailDeviceSignatureExpired, "device signature expired")
	}
	if d.Nonce == "" {
		return invalid("device-nonce-missing", openclaw.DetailDeviceNonceRequired, "device nonce required")
	}
	if d.Nonce != c.nonce {
		return invalid("device-nonce-mismatch", openclaw.DetailDeviceNonceMismatch, "device nonce mismatch")
	}
	pub, err := openclaw.ParsePublicKey(d.PublicKey)
	if err != nil {
		return invalid("device-signature", openclaw.DetailDeviceSignatureInvalid, "device signature invalid")
	}
	auth := openclaw.DeviceAuth{
		DeviceID: d.ID, ClientID: p.Client.ID, ClientMode: p.Client.Mode, Role: roleOf(p),
		Scopes: scopesOf(p), SignedAtMs: d.SignedAt, Token: signatureToken(p.Auth), Nonce: d.Nonce,
		Platform: p.Client.Platform, DeviceFamily: p.Client.DeviceFamily,
	}
	if _, err := auth.Verify(pub, d.Signature); err != nil {
		return invalid("device-signature", openclaw.DetailDeviceSignatureInvalid, "device signature invalid")
	}
	return openclaw.EncodeKey(pub), true
}

func roleOf(p openclaw.ConnectParams) string {
	if p.Role == "" {
		return "operator"
	}
	return p.Role
}

func scopesOf(p openclaw.ConnectParams) []string {
	if p.Scopes == nil {
		return []string{}
	}
	return p.Scopes
}

// signatureToken is the credential a device signature covers: auth.token,
// else auth.deviceToken, else auth.bootstrapToken.
func signatureToken(a *openclaw.ConnectAuth) string {
	switch {
	case a == nil:
		return ""
	case a.Token != "":
		return a.Token
	case a.DeviceToken != "":
		return a.DeviceToken
	}
	return a.BootstrapToken
}

// hello sends hello-ok and registers the node.
func (c *conn) hello(id string, p openclaw.ConnectParams, protocol int, method, user, token string) {
	s := c.s
	info := NodeInfo{
		NodeID: p.Device.ID, ConnID: c.id, ClientID: p.Client.ID, Mode: p.Client.Mode,
		DisplayName: p.Client.DisplayName, Platform: p.Client.Platform, Version: p.Client.Version,
		Caps: p.Caps, Commands: p.Commands, Protocol: protocol, AuthMethod: method, User: user,
		RemoteAddr: c.r.RemoteAddr, ConnectedAt: time.Now(),
	}
	hello := openclaw.HelloOK{
		Type: "hello-ok", Protocol: protocol,
		Server: openclaw.HelloServer{Version: "openclawtest", ConnID: c.id},
		Features: openclaw.HelloFeatures{
			Methods: []string{openclaw.MethodInvokeResult, openclaw.MethodNodeEvent},
			Events: []string{openclaw.EventChallenge, openclaw.EventTick, openclaw.EventShutdown,
				openclaw.EventInvokeRequest, openclaw.EventInvokeCancel},
		},
		Snapshot: mustJSON(map[string]any{
			"presence": []any{}, "health": map[string]any{},
			"stateVersion": map[string]int{"presence": 0, "health": 0},
			"uptimeMs":     time.Since(s.started).Milliseconds(), "authMode": s.mode,
		}),
		Auth: openclaw.HelloAuth{DeviceToken: token, Role: roleOf(p), Scopes: []string{}, IssuedAtMs: time.Now().UnixMilli()},
		Policy: openclaw.Policy{MaxPayload: s.opts.MaxPayload, MaxBufferedBytes: 2 * s.opts.MaxPayload,
			TickIntervalMs: s.opts.TickInterval.Milliseconds()},
	}
	c.respond(id, true, hello, nil)
	// Registered after hello-ok, so that no invoke reaches a node still
	// waiting for it.
	s.mu.Lock()
	old := s.nodes[info.NodeID]
	s.connects[info.NodeID]++
	info.Connects = s.connects[info.NodeID]
	c.node = info
	s.nodes[info.NodeID] = c
	s.notify()
	s.mu.Unlock()
	if old != nil {
		old.ws.Close(websocket.StatusPolicyViolation, "replaced by a newer connection")
	}
	s.opts.Logf("openclawtest: node %s connected (auth %s, protocol %d)", info.NodeID, method, protocol)
}

// serve reads the node's requests until the connection ends.
func (c *conn) serve() {
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		f, err := openclaw.ParseFrame(data)
		if typ != websocket.MessageText || err != nil {
			c.ws.Close(websocket.StatusInvalidFramePayloadData, "invalid frame")
			return
		}
		if f.Type != openclaw.TypeRequest {
			continue
		}
		switch f.Method {
		case openclaw.MethodInvokeResult:
			c.invokeResult(f)
		case openclaw.MethodNodeEvent:
			c.nodeEvent(f)
		default:
			c.respond(f.ID, false, nil, &openclaw.ErrorShape{Code: openclaw.CodeInvalidRequest, Message: "unknown method: " + f.Method})
		}
	}
}

func (c *conn) ticks(done <-chan struct{}) {
	t := time.NewTicker(c.s.opts.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			c.s.mu.Lock()
			silent := c.s.silent
			c.s.mu.Unlock()
			if !silent {
				c.event(openclaw.EventTick, map[string]int64{"ts": time.Now().UnixMilli()})
			}
		}
	}
}

// refuse answers a connect with an error and closes the connection with
// code and the message as reason.
func (c *conn) refuse(id, code, message string, details any, closeCode websocket.StatusCode) {
	e := &openclaw.ErrorShape{Code: code, Message: message}
	if details != nil {
		e.Details = mustJSON(details)
	}
	c.respond(id, false, nil, e)
	c.s.opts.Logf("openclawtest: connect refused: %s (%s)", message, code)
	c.ws.Close(closeCode, truncateReason(message))
}

func (c *conn) respond(id string, ok bool, payload any, e *openclaw.ErrorShape) {
	f := openclaw.Frame{Type: openclaw.TypeResponse, ID: id, OK: ok, Error: e}
	if payload != nil {
		f.Payload = mustJSON(payload)
	}
	c.write(f)
}

func (c *conn) event(name string, payload any) {
	seq := c.seq.Add(1)
	c.write(openclaw.Frame{Type: openclaw.TypeEvent, Event: name, Payload: mustJSON(payload), Seq: &seq})
}

func (c *conn) write(f openclaw.Frame) {
	data, err := f.Encode()
	if err != nil {
		c.s.opts.Logf("openclawtest: frame: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil && !errors.Is(err, context.Canceled) {
		c.s.opts.Logf("openclawtest: write: %v", err)
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Errorf("openclawtest: %w", err))
	}
	return b
}

// truncateReason fits a close reason into WebSocket's 123 bytes.
func truncateReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	return s[:120] + "..."
}
