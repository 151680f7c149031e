package openclaw

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// session is one WebSocket connection to the gateway.
type session struct {
	n          *Node
	ws         *websocket.Conn
	maxPayload int
	tick       time.Duration
	lastRead   atomic.Int64 // unix nanoseconds of the last frame read

	mu      sync.Mutex
	pending map[string]string // request id → method, until the gateway answers
}

// Close codes the node uses (OpenClaw's client closes a silent connection
// with 4000).
const (
	closeTickTimeout websocket.StatusCode = 4000
	maxPending                            = 4096
	writeTimeout                          = 10 * time.Second
)

// connect runs one connection: dial, handshake, then serve until it ends.
// helloed reports whether hello-ok was reached.
func (n *Node) connect(ctx context.Context) (helloed bool, err error) {
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(hctx, n.url.String(), &websocket.DialOptions{
		HTTPClient: n.client,
		HTTPHeader: n.Header.Clone(),
	})
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", n.url.Redacted(), err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(MaxPreConnectFrame)
	s := &session{n: n, ws: ws, maxPayload: MaxPreConnectFrame, pending: map[string]string{}}
	hello, err := s.handshake(hctx)
	if err != nil {
		return false, err
	}
	cancel()

	s.maxPayload = min(hello.Policy.MaxPayload, MaxFrame)
	ws.SetReadLimit(int64(s.maxPayload))
	s.tick = time.Duration(hello.Policy.TickIntervalMs) * time.Millisecond
	n.keepDeviceToken(hello.Auth.DeviceToken)
	n.log.Info("openclaw: connected", "protocol", hello.Protocol, "conn_id", hello.Server.ConnID, "max_payload", s.maxPayload, "tick", s.tick)
	n.report(State{Phase: PhaseConnected, Protocol: hello.Protocol})

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		<-sctx.Done()
		if ctx.Err() != nil {
			ws.Close(websocket.StatusGoingAway, "node stopping")
		}
	}()
	go s.watch(sctx)
	n.attach(s)
	defer n.detach(s)
	return true, s.serve()
}

// read reads one frame. A binary or malformed frame closes the connection:
// the gateway only sends JSON text.
func (s *session) read(ctx context.Context) (Frame, error) {
	typ, data, err := s.ws.Read(ctx)
	if err != nil {
		if errors.Is(err, websocket.ErrMessageTooBig) {
			return Frame{}, fmt.Errorf("gateway sent a frame over the %d-byte limit: %w", s.maxPayload, err)
		}
		return Frame{}, fmt.Errorf("reading from the gateway: %w", err)
	}
	s.lastRead.Store(time.Now().UnixNano())
	if typ != websocket.MessageText {
		s.ws.Close(websocket.StatusUnsupportedData, "binary frame")
		return Frame{}, errors.New("gateway sent a binary frame (the protocol is JSON text)")
	}
	f, err := ParseFrame(data)
	if err != nil {
		s.ws.Close(websocket.StatusInvalidFramePayloadData, "malformed frame")
		return Frame{}, fmt.Errorf("gateway sent a malformed frame: %w", err)
	}
	return f, nil
}

// handshake waits for connect.challenge, sends connect and reads its
// answer. Events before the challenge and between connect and its answer
// are skipped.
func (s *session) handshake(ctx context.Context) (HelloOK, error) {
	var ch Challenge
	for {
		f, err := s.read(ctx)
		if err != nil {
			return HelloOK{}, fmt.Errorf("waiting for connect.challenge: %w", err)
		}
		if f.Type == TypeEvent && f.Event == EventChallenge {
			if json.Unmarshal(f.Payload, &ch) != nil || ch.Nonce == "" {
				return HelloOK{}, errors.New("gateway sent a connect.challenge without a nonce")
			}
			break
		}
	}
	params, usedStored, err := s.n.connectParams(ch.Nonce)
	if err != nil {
		return HelloOK{}, err
	}
	id := newID()
	if err := s.write(ctx, MethodConnect, id, params); err != nil {
		return HelloOK{}, fmt.Errorf("sending connect: %w", err)
	}
	for {
		f, err := s.read(ctx)
		if err != nil {
			return HelloOK{}, fmt.Errorf("waiting for the connect response: %w", err)
		}
		if f.Type != TypeResponse || f.ID != id {
			continue
		}
		if !f.OK {
			ce := connectError(f.Error)
			if ce.Detail == DetailAuthDeviceTokenMismatch && usedStored {
				s.n.forgetDeviceToken()
			}
			return HelloOK{}, ce
		}
		return parseHello(f.Payload)
	}
}

func parseHello(payload json.RawMessage) (HelloOK, error) {
	var h HelloOK
	if err := json.Unmarshal(payload, &h); err != nil {
		return h, fmt.Errorf("hello-ok: %w", err)
	}
	switch {
	case h.Type != "hello-ok":
		return h, fmt.Errorf("hello-ok: payload type %q", h.Type)
	case h.Protocol < MinNodeProtocol || h.Protocol > ProtocolVersion:
		return h, fmt.Errorf("hello-ok: protocol %d, the node speaks %d to %d", h.Protocol, MinNodeProtocol, ProtocolVersion)
	case h.Policy.MaxPayload < 1:
		return h, fmt.Errorf("hello-ok: policy.maxPayload %d", h.Policy.MaxPayload)
	case h.Policy.TickIntervalMs < 1:
		return h, fmt.Errorf("hello-ok: policy.tickIntervalMs %d", h.Policy.TickIntervalMs)
	}
	return h, nil
}

func connectError(e *ErrorShape) *ConnectError {
	if e == nil {
		return &ConnectError{Code: CodeUnavailable, Message: "connect failed without an error"}
	}
	ce := &ConnectError{Code: e.Code, Message: e.Message}
	var d ConnectErrorDetails
	if json.Unmarshal(e.Details, &d) == nil {
		ce.Detail, ce.RequestID = d.Code, d.RequestID
		ce.Reason = d.Reason
		if ce.Reason == "" {
			ce.Reason = d.AuthReason
		}
	}
	if e.RetryAfterMs != nil {
		ce.RetryAfter = time.Duration(*e.RetryAfterMs) * time.Millisecond
	}
	return ce
}

// connectParams assembles the connect request as OpenClaw's client does:
// the shared token and password when set; without either, the stored
// device token as auth.token and auth.deviceToken. The signature covers
// the token sent.
func (n *Node) connectParams(nonce string) (p ConnectParams, usedStored bool, err error) {
	auth := ConnectAuth{Token: n.Token, Password: n.Password}
	if n.Token == "" && n.Password == "" && n.DeviceTokens != nil {
		dt, err := n.DeviceTokens.LoadDeviceToken()
		if err != nil {
			return p, false, fmt.Errorf("loading the device token: %w", err)
		}
		n.mu.Lock()
		n.knownToken = dt
		n.mu.Unlock()
		auth.Token, auth.DeviceToken, usedStored = dt, dt, dt != ""
	}
	da := DeviceAuth{
		DeviceID: n.deviceID, ClientID: ClientID, ClientMode: ClientMode, Role: RoleNode,
		Scopes: []string{}, SignedAtMs: time.Now().UnixMilli(), Token: auth.Token, Nonce: nonce,
		Platform: n.platform,
	}
	display := n.DisplayName
	if display == "" {
		display = defaultDisplayName()
	}
	version := n.Version
	if version == "" {
		version = defaultVersion()
	}
	p = ConnectParams{
		MinProtocol: MinNodeProtocol,
		MaxProtocol: ProtocolVersion,
		Client: ClientInfo{ID: ClientID, DisplayName: display, Version: version,
			Platform: n.platform, Mode: ClientMode, InstanceID: n.deviceID},
		Caps:     []string{"system"},
		Commands: n.commands,
		Role:     RoleNode,
		Scopes:   []string{},
		Device: &DeviceProof{
			ID: n.deviceID, PublicKey: EncodeKey(n.Identity.Public().(ed25519.PublicKey)),
			Signature: da.Sign(n.Identity), SignedAt: da.SignedAtMs, Nonce: nonce,
		},
	}
	if auth != (ConnectAuth{}) {
		p.Auth = &auth
	}
	return p, usedStored, nil
}

// keepDeviceToken saves a device token from hello-ok that differs from the
// one known. A failure to save is logged, not fatal: the connection works.
func (n *Node) keepDeviceToken(token string) {
	if token == "" || n.DeviceTokens == nil {
		return
	}
	n.mu.Lock()
	known := n.knownToken
	n.knownToken = token
	n.mu.Unlock()
	if token == known {
		return
	}
	if err := n.DeviceTokens.SaveDeviceToken(token); err != nil {
		n.log.Error("openclaw: saving the device token", "err", err)
	}
}

// forgetDeviceToken drops a stored device token the gateway refused, as
// OpenClaw's client does, so that the next connect does not repeat it.
func (n *Node) forgetDeviceToken() {
	n.mu.Lock()
	n.knownToken = ""
	n.mu.Unlock()
	if err := n.DeviceTokens.SaveDeviceToken(""); err != nil {
		n.log.Error("openclaw: forgetting the refused device token", "err", err)
	}
	n.log.Warn("openclaw: the gateway refused the stored device token; it is forgotten")
}

// serve reads frames until the connection ends.
func (s *session) serve() error {
	ctx := context.Background() // the connection is ended by closing it
	for {
		f, err := s.read(ctx)
		if err != nil {
			return err
		}
		switch f.Type {
		case TypeResponse:
			s.answered(f)
		case TypeEvent:
			s.event(f)
		default:
			s.n.log.Debug("openclaw: skipping a frame of unknown type", "type", f.Type)
		}
	}
}

func (s *session) event(f Frame) {
	switch f.Event {
	case EventInvokeRequest:
		s.n.invokes.request(f.Payload)
	case EventInvokeCancel:
		var c InvokeCancel
		if json.Unmarshal(f.Payload, &c) != nil || c.InvokeID == "" {
			s.n.log.Error("openclaw: malformed node.invoke.cancel skipped")
			return
		}
		s.n.invokes.cancel(c.InvokeID)
	case EventShutdown:
		s.n.log.Info("openclaw: the gateway is shutting down")
	}
}

// answered logs a refusal of one of the node's requests.
func (s *session) answered(f Frame) {
	s.mu.Lock()
	method, ok := s.pending[f.ID]
	delete(s.pending, f.ID)
	s.mu.Unlock()
	if ok && !f.OK && f.Error != nil {
		s.n.log.Warn("openclaw: the gateway refused a request", "method", method, "code", f.Error.Code, "message", f.Error.Message)
	}
}

// send writes a request; its answer is only logged when it is a refusal.
func (s *session) send(method string, params any) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return s.write(ctx, method, newID(), params)
}

func (s *session) write(ctx context.Context, method, id string, params any) error {
	raw, err := encodeJSON(params)
	if err != nil {
		return fmt.Errorf("%s params: %w", method, err)
	}
	data, err := Frame{Type: TypeRequest, ID: id, Method: method, Params: raw}.Encode()
	if err != nil {
		return err
	}
	if len(data) > s.maxPayload {
		return &tooLargeError{size: len(data), limit: s.maxPayload}
	}
	s.mu.Lock()
	if len(s.pending) < maxPending {
		s.pending[id] = method
	}
	s.mu.Unlock()
	return s.ws.Write(ctx, websocket.MessageText, data)
}

type tooLargeError struct{ size, limit int }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the gateway's maxPayload of %d", e.size, e.limit)
}

// watch closes a connection on which nothing arrived for two tick
// intervals (OpenClaw's client does the same with code 4000).
func (s *session) watch(ctx context.Context) {
	period := max(s.tick, 10*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if silent := time.Since(time.Unix(0, s.lastRead.Load())); silent > 2*s.tick {
				s.n.log.Warn("openclaw: no frame from the gateway in two tick intervals; reconnecting", "silent", silent)
				s.ws.Close(closeTickTimeout, "tick timeout")
				return
			}
		}
	}
}
