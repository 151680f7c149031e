package openclawtest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/coder/websocket"
)

// rawClient speaks the protocol by hand, so that tests can send what a
// well-behaved node never would.
type rawClient struct {
	t     *testing.T
	ws    *websocket.Conn
	nonce string
}

func dialRaw(t *testing.T, s *Server) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	c := &rawClient{t: t, ws: ws}
	f := c.read()
	var ch openclaw.Challenge
	if f.Event != openclaw.EventChallenge || json.Unmarshal(f.Payload, &ch) != nil || ch.Nonce == "" {
		t.Fatalf("first frame %+v is not a challenge", f)
	}
	c.nonce = ch.Nonce
	return c
}

func (c *rawClient) read() openclaw.Frame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	f, err := openclaw.ParseFrame(data)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

func (c *rawClient) send(params any) {
	c.t.Helper()
	raw, _ := json.Marshal(params)
	data, _ := json.Marshal(openclaw.Frame{Type: openclaw.TypeRequest, ID: "c1", Method: openclaw.MethodConnect, Params: raw})
	if err := c.ws.Write(context.Background(), websocket.MessageText, data); err != nil {
		c.t.Fatal(err)
	}
}

// refused reads the refusal of the connect and the close that follows.
func (c *rawClient) refused() (*openclaw.ErrorShape, openclaw.ConnectErrorDetails, websocket.StatusCode) {
	c.t.Helper()
	f := c.read()
	if f.Type != openclaw.TypeResponse || f.OK || f.Error == nil {
		c.t.Fatalf("connect not refused: %+v", f)
	}
	var d openclaw.ConnectErrorDetails
	json.Unmarshal(f.Error.Details, &d)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := c.ws.Read(ctx)
	return f.Error, d, websocket.CloseStatus(err)
}

// nodeConnect is a genuine node connect for key and nonce.
func nodeConnect(key ed25519.PrivateKey, nonce string, auth *openclaw.ConnectAuth) openclaw.ConnectParams {
	pub := key.Public().(ed25519.PublicKey)
	id := openclaw.DeviceID(pub)
	a := openclaw.DeviceAuth{DeviceID: id, ClientID: openclaw.ClientID, ClientMode: openclaw.ClientMode, Role: openclaw.RoleNode,
		Scopes: []string{}, SignedAtMs: time.Now().UnixMilli(), Nonce: nonce, Platform: "linux"}
	if auth != nil {
		a.Token = auth.Token
	}
	return openclaw.ConnectParams{
		MinProtocol: openclaw.MinNodeProtocol, MaxProtocol: openclaw.ProtocolVersion,
		Client: openclaw.ClientInfo{ID: openclaw.ClientID, Version: "1", Platform: "linux", Mode: openclaw.ClientMode},
		Role:   openclaw.RoleNode, Scopes: []string{}, Auth: auth,
		Device: &openclaw.DeviceProof{ID: id, PublicKey: openclaw.EncodeKey(pub), Signature: a.Sign(key), SignedAt: a.SignedAtMs, Nonce: nonce},
	}
}

func newTestKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDoubleRefusesTamperedDevices: every way of getting the device proof
// wrong is refused with OpenClaw's message and detail code and a 1008
// close; the genuine proof gets as far as pairing.
func TestDoubleRefusesTamperedDevices(t *testing.T) {
	s := Start(t, Options{Token: "shared"})
	auth := &openclaw.ConnectAuth{Token: "shared"}
	other := newTestKey(t)
	for _, tc := range []struct {
		name, msg, code string
		tamper          func(p *openclaw.ConnectParams)
	}{
		{"signature by another key", "device signature invalid", openclaw.DetailDeviceSignatureInvalid, func(p *openclaw.ConnectParams) {
			p.Device.Signature = nodeConnect(other, p.Device.Nonce, auth).Device.Signature
		}},
		{"signed field changed", "device signature invalid", openclaw.DetailDeviceSignatureInvalid, func(p *openclaw.ConnectParams) {
			p.Client.Platform = "darwin"
		}},
		{"token not the signed one", "device signature invalid", openclaw.DetailDeviceSignatureInvalid, func(p *openclaw.ConnectParams) {
			p.Auth = &openclaw.ConnectAuth{Token: "shared-but-another"}
		}},
		{"scopes added after signing", "device signature invalid", openclaw.DetailDeviceSignatureInvalid, func(p *openclaw.ConnectParams) {
			p.Scopes = []string{"operator.admin"}
		}},
		{"garbage signature", "device signature invalid", openclaw.DetailDeviceSignatureInvalid, func(p *openclaw.ConnectParams) {
			p.Device.Signature = "AAAA"
		}},
		{"id of another key", "device identity mismatch", openclaw.DetailDeviceIDMismatch, func(p *openclaw.ConnectParams) {
			p.Device.ID = openclaw.DeviceID(other.Public().(ed25519.PublicKey))
		}},
		{"stale", "device signature expired", openclaw.DetailDeviceSignatureExpired, func(p *openclaw.ConnectParams) {
			p.Device.SignedAt -= int64(3 * time.Minute / time.Millisecond)
		}},
		{"no nonce", "device nonce required", openclaw.DetailDeviceNonceRequired, func(p *openclaw.ConnectParams) {
			p.Device.Nonce = ""
		}},
		{"another nonce", "device nonce mismatch", openclaw.DetailDeviceNonceMismatch, func(p *openclaw.ConnectParams) {
			p.Device.Nonce = "replayed-nonce"
		}},
		{"no device", "device identity required", openclaw.DetailDeviceIdentityRequired, func(p *openclaw.ConnectParams) {
			p.Device = nil
		}},
	} {
		c := dialRaw(t, s)
		p := nodeConnect(newTestKey(t), c.nonce, auth)
		tc.tamper(&p)
		c.send(p)
		e, d, code := c.refused()
		if e.Message != tc.msg || d.Code != tc.code || code != websocket.StatusPolicyViolation {
			t.Errorf("%s: refused with %q %q close %d, want %q %q 1008", tc.name, e.Message, d.Code, code, tc.msg, tc.code)
		}
	}
	if len(s.Pending()) != 0 {
		t.Fatalf("a refused device got a pairing request: %+v", s.Pending())
	}

	c := dialRaw(t, s)
	c.send(nodeConnect(newTestKey(t), c.nonce, auth))
	e, d, code := c.refused()
	if e.Code != openclaw.CodeNotPaired || d.Code != openclaw.DetailPairingRequired || d.Reason != "not-paired" ||
		d.RequestID == "" || code != websocket.StatusPolicyViolation || len(s.Pending()) != 1 {
		t.Errorf("genuine device: %+v %+v close %d", e, d, code)
	}
}

// TestDoubleRefusesBadConnects: the admission and auth refusals.
func TestDoubleRefusesBadConnects(t *testing.T) {
	s := Start(t, Options{Token: "shared"})
	for _, tc := range []struct {
		name   string
		msg    string
		detail string
		close  websocket.StatusCode
		params func(nonce string) any
	}{
		{"protocol from the future", "protocol mismatch", openclaw.DetailProtocolMismatch, websocket.StatusProtocolError, func(n string) any {
			p := nodeConnect(newTestKey(t), n, &openclaw.ConnectAuth{Token: "shared"})
			p.MinProtocol, p.MaxProtocol = 5, 5
			return p
		}},
		{"v3 only for an operator", "protocol mismatch", openclaw.DetailProtocolMismatch, websocket.StatusProtocolError, func(n string) any {
			p := nodeConnect(newTestKey(t), n, &openclaw.ConnectAuth{Token: "shared"})
			p.MaxProtocol, p.Role = 3, "operator"
			return p
		}},
		{"unknown field", "invalid connect params", "", websocket.StatusPolicyViolation, func(n string) any {
			var m map[string]any
			b, _ := json.Marshal(nodeConnect(newTestKey(t), n, nil))
			json.Unmarshal(b, &m)
			m["superuser"] = true
			return m
		}},
		{"unknown client id", "invalid connect params", "", websocket.StatusPolicyViolation, func(n string) any {
			p := nodeConnect(newTestKey(t), n, nil)
			p.Client.ID = "clawguard"
			return p
		}},
		{"bad role", "invalid role", "", websocket.StatusPolicyViolation, func(n string) any {
			p := nodeConnect(newTestKey(t), n, nil)
			p.Role = "root"
			return p
		}},
		{"no token", "unauthorized: gateway token missing (provide gateway auth token)", openclaw.DetailAuthTokenMissing, websocket.StatusPolicyViolation, func(n string) any {
			return nodeConnect(newTestKey(t), n, nil)
		}},
		{"wrong token", "unauthorized: gateway token mismatch (provide gateway auth token)", openclaw.DetailAuthTokenMismatch, websocket.StatusPolicyViolation, func(n string) any {
			return nodeConnect(newTestKey(t), n, &openclaw.ConnectAuth{Token: "guess"})
		}},
		{"unknown device token", "unauthorized: device token mismatch (rotate/reissue device token)", openclaw.DetailAuthDeviceTokenMismatch, websocket.StatusPolicyViolation, func(n string) any {
			return nodeConnect(newTestKey(t), n, &openclaw.ConnectAuth{Token: "forged", DeviceToken: "forged"})
		}},
	} {
		c := dialRaw(t, s)
		c.send(tc.params(c.nonce))
		e, d, code := c.refused()
		if !strings.HasPrefix(e.Message, tc.msg) || d.Code != tc.detail || code != tc.close {
			t.Errorf("%s: refused %q %q close %d, want %q %q %d", tc.name, e.Message, d.Code, code, tc.msg, tc.detail, tc.close)
		}
	}
	if len(s.Pending()) != 0 {
		t.Errorf("refused connects made pairing requests: %+v", s.Pending())
	}

	c := dialRaw(t, s)
	data, _ := json.Marshal(openclaw.Frame{Type: openclaw.TypeRequest, ID: "x", Method: "node.invoke.result", Params: json.RawMessage(`{}`)})
	c.ws.Write(context.Background(), websocket.MessageText, data)
	if e, _, code := c.refused(); e.Message != "invalid handshake: first request must be connect" || code != websocket.StatusPolicyViolation {
		t.Errorf("a first request other than connect: %q close %d", e.Message, code)
	}
}

// TestDoubleNodeV3Protocol: a node offering only the previous protocol is
// admitted at it, as OpenClaw keeps N-1 for nodes.
func TestDoubleNodeV3Protocol(t *testing.T) {
	s := Start(t, Options{})
	key := newTestKey(t)
	c := dialRaw(t, s)
	c.send(nodeConnect(key, c.nonce, nil))
	_, d, _ := c.refused()
	if err := s.Approve(d.RequestID); err != nil {
		t.Fatal(err)
	}
	c = dialRaw(t, s)
	p := nodeConnect(key, c.nonce, nil)
	p.MinProtocol, p.MaxProtocol = 3, 3
	c.send(p)
	f := c.read()
	var h openclaw.HelloOK
	if !f.OK || json.Unmarshal(f.Payload, &h) != nil || h.Protocol != 3 || h.Auth.DeviceToken == "" || h.Auth.Role != "node" {
		t.Fatalf("hello: %+v %+v", f, h)
	}
	if _, err := s.WaitNode(context.Background(), p.Device.ID, nil); err != nil {
		t.Fatal(err)
	}
	res, err := s.Invoke(context.Background(), "nobody", "system.run", nil, time.Second, "")
	if err != nil || res.Error.Code != openclaw.CodeNotConnected {
		t.Errorf("invoke of an unknown node: %+v %v", res, err)
	}
	if err := s.Approve("no-such"); err == nil || !strings.Contains(err.Error(), "no pending pairing request") {
		t.Errorf("Approve of nothing: %v", err)
	}
}
