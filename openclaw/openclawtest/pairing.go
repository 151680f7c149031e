package openclawtest

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/coder/websocket"
)

// Device is a paired device.
type Device struct {
	DeviceID    string    `json:"device_id"`
	PublicKey   string    `json:"public_key"`
	DisplayName string    `json:"display_name,omitempty"`
	Platform    string    `json:"platform,omitempty"`
	ClientID    string    `json:"client_id,omitempty"`
	Roles       []string  `json:"roles"`
	ApprovedAt  time.Time `json:"approved_at"`
	tokens      map[string]string
}

// PairingRequest is a device waiting for approval.
type PairingRequest struct {
	RequestID   string    `json:"request_id"`
	DeviceID    string    `json:"device_id"`
	PublicKey   string    `json:"public_key"`
	DisplayName string    `json:"display_name,omitempty"`
	Platform    string    `json:"platform,omitempty"`
	ClientID    string    `json:"client_id,omitempty"`
	Role        string    `json:"role"`
	Reason      string    `json:"reason"`
	RemoteAddr  string    `json:"remote_addr"`
	CreatedAt   time.Time `json:"created_at"`
}

// pair lets a paired device through and issues (or repeats) its device
// token for the role; an unknown device, or a known one asking for a new
// role, gets a pending request and a NOT_PAIRED refusal, as OpenClaw's
// requirePairing answers.
func (c *conn) pair(id string, p openclaw.ConnectParams, publicKey string) (token string, ok bool) {
	s := c.s
	role := roleOf(p)
	s.mu.Lock()
	d := s.devices[p.Device.ID]
	reason := ""
	switch {
	case d == nil || d.PublicKey != publicKey:
		reason = "not-paired"
	case !slices.Contains(d.Roles, role):
		reason = "role-upgrade"
	}
	if reason == "" {
		token = d.tokens[role]
		if token == "" {
			token = newToken()
			d.tokens[role] = token
		}
		s.mu.Unlock()
		return token, true
	}
	req := s.requestPairing(p, publicKey, role, reason, c.r.RemoteAddr)
	s.mu.Unlock()

	requirement := map[string]string{
		"not-paired":   "device is not approved yet",
		"role-upgrade": "device is asking for a higher role than currently approved",
	}[reason]
	hint := map[string]string{
		"not-paired":   "Approve this device from the pending pairing requests.",
		"role-upgrade": "Review the requested role upgrade, then approve the pending request.",
	}[reason]
	msg := "pairing required: " + requirement
	e := &openclaw.ErrorShape{Code: openclaw.CodeNotPaired, Message: msg, Details: mustJSON(openclaw.ConnectErrorDetails{
		Code: openclaw.DetailPairingRequired, Reason: reason, RequestID: req.RequestID, RemediationHint: hint,
		DeviceID: p.Device.ID, RequestedRole: role, RequestedScopes: scopesOf(p),
	})}
	c.respond(id, false, nil, e)
	s.opts.Logf("openclawtest: device %s needs pairing (request %s)", p.Device.ID, req.RequestID)
	c.ws.Close(websocket.StatusPolicyViolation, truncateReason(msg+" (requestId: "+req.RequestID+")"))
	return "", false
}

// requestPairing returns the device's pending request, made anew when the
// device's key or role changed (a new request supersedes older ones for
// the device, as in OpenClaw). s.mu must be held.
func (s *Server) requestPairing(p openclaw.ConnectParams, publicKey, role, reason, remote string) *PairingRequest {
	for rid, r := range s.pending {
		if r.DeviceID != p.Device.ID {
			continue
		}
		if r.PublicKey == publicKey && r.Role == role {
			return r
		}
		delete(s.pending, rid)
	}
	r := &PairingRequest{
		RequestID: newID(), DeviceID: p.Device.ID, PublicKey: publicKey, DisplayName: p.Client.DisplayName,
		Platform: p.Client.Platform, ClientID: p.Client.ID, Role: role, Reason: reason,
		RemoteAddr: remote, CreatedAt: time.Now(),
	}
	s.pending[r.RequestID] = r
	s.notify()
	return r
}

func (s *Server) deviceTokenValid(deviceID, role, token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[deviceID]
	if d == nil || d.tokens[role] == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(d.tokens[role]), []byte(token)) == 1
}

func (s *Server) hasDeviceToken(deviceID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[deviceID]
	return d != nil && len(d.tokens) > 0
}

// Pending lists the pairing requests, oldest first.
func (s *Server) Pending() []PairingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PairingRequest, 0, len(s.pending))
	for _, r := range s.pending {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// WaitPairing waits for a pending pairing request and returns the oldest.
func (s *Server) WaitPairing(ctx context.Context) (PairingRequest, error) {
	var r PairingRequest
	err := s.waitFor(ctx, func() bool {
		for _, p := range s.pending {
			if r.RequestID == "" || p.CreatedAt.Before(r.CreatedAt) {
				r = *p
			}
		}
		return r.RequestID != ""
	})
	return r, err
}

// Approve pairs the request's device for its role; its next connect gets
// hello-ok with a device token.
func (s *Server) Approve(requestID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.pending[requestID]
	if r == nil {
		return fmt.Errorf("openclawtest: no pending pairing request %q", requestID)
	}
	delete(s.pending, requestID)
	d := s.devices[r.DeviceID]
	if d == nil || d.PublicKey != r.PublicKey {
		d = &Device{DeviceID: r.DeviceID, PublicKey: r.PublicKey, tokens: map[string]string{}}
		s.devices[r.DeviceID] = d
	}
	d.DisplayName, d.Platform, d.ClientID, d.ApprovedAt = r.DisplayName, r.Platform, r.ClientID, time.Now()
	if !slices.Contains(d.Roles, r.Role) {
		d.Roles = append(d.Roles, r.Role)
	}
	s.notify()
	return nil
}

// Reject drops a pending pairing request.
func (s *Server) Reject(requestID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[requestID] == nil {
		return fmt.Errorf("openclawtest: no pending pairing request %q", requestID)
	}
	delete(s.pending, requestID)
	s.notify()
	return nil
}

// Devices lists the paired devices.
func (s *Server) Devices() []Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Device, 0, len(s.devices))
	for _, d := range s.devices {
		c := *d
		c.Roles = slices.Clone(d.Roles)
		c.tokens = nil
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID < out[j].DeviceID })
	return out
}

// DeviceToken is the device token issued to a device for role ("" when
// none).
func (s *Server) DeviceToken(deviceID, role string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[deviceID]; d != nil {
		return d.tokens[role]
	}
	return ""
}

func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
