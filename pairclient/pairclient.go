package pairclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/wire"
)

// GenerateKey makes a new device identity.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating device key: %w", err)
	}
	return key, nil
}

// DeviceID is the device id of key (hex SHA-256 of the public key).
func DeviceID(key ed25519.PrivateKey) string {
	return pairing.DeviceID(key.Public().(ed25519.PublicKey))
}

// APIError is a refusal by the gate: the HTTP status and the JSON body's
// code and message.
type APIError struct {
	Status int
	Code   string
	Msg    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("gate refused (%d %s): %s", e.Status, e.Code, e.Msg)
}

// CodeOf returns the gate's refusal code of err, or "".
func CodeOf(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Session talks the pairing protocol with one gate as one device.
type Session struct {
	gateway string
	key     ed25519.PrivateKey
	client  *http.Client
	now     func() time.Time
}

// NewSession returns a session for gateway (http[s]://host[:port]) and key.
// client may be nil (a client with a 30 s timeout).
func NewSession(gateway string, key ed25519.PrivateKey, client *http.Client) (*Session, error) {
	gateway = strings.TrimRight(gateway, "/")
	if !strings.HasPrefix(gateway, "http://") && !strings.HasPrefix(gateway, "https://") {
		return nil, fmt.Errorf("gateway %q: want an http:// or https:// URL", gateway)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("device key: %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Session{gateway: gateway, key: key, client: client, now: time.Now}, nil
}

// DeviceID is the session's device id.
func (s *Session) DeviceID() string { return DeviceID(s.key) }

// post sends a JSON body to a pairing endpoint and decodes the answer into
// out; a non-2xx answer is an *APIError.
func (s *Session) post(ctx context.Context, endpoint string, body, out any) (int, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", s.gateway+"/.clawguard/pair/"+endpoint, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("pairing %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("pairing %s: reading the answer: %w", endpoint, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		var body wire.ErrorBody
		if json.Unmarshal(data, &body) == nil && body.Code != "" {
			e.Code, e.Msg = body.Code, body.Error
		} else {
			e.Code, e.Msg = "http_"+fmt.Sprint(resp.StatusCode), strings.TrimSpace(string(data))
		}
		return resp.StatusCode, e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("pairing %s: bad answer: %w", endpoint, err)
	}
	return resp.StatusCode, nil
}

// Challenge gets a fresh nonce.
func (s *Session) Challenge(ctx context.Context) (pairing.Challenge, error) {
	var c pairing.Challenge
	_, err := s.post(ctx, "challenge", nil, &c)
	return c, err
}

// Request asks to pair under name: the answer is approved (with the token)
// or pending (with the request id to poll).
func (s *Session) Request(ctx context.Context, name string) (*pairing.PairResponse, error) {
	if err := pairing.ValidName(name); err != nil {
		return nil, fmt.Errorf("device name: %w", err)
	}
	ch, err := s.Challenge(ctx)
	if err != nil {
		return nil, err
	}
	var out pairing.PairResponse
	_, err = s.post(ctx, "request", pairing.NewPairRequest(s.key, name, ch.Nonce, s.now()), &out)
	return &out, err
}

// Poll asks about a pending request. An approved answer carries the token,
// which the gate hands out only once.
func (s *Session) Poll(ctx context.Context, requestID string) (*pairing.PairResponse, error) {
	ch, err := s.Challenge(ctx)
	if err != nil {
		return nil, err
	}
	var out pairing.PairResponse
	_, err = s.post(ctx, "poll", pairing.NewPollRequest(s.key, requestID, ch.Nonce, s.now()), &out)
	return &out, err
}

// Options configures Pair.
type Options struct {
	// Gateway is the gate's base URL, e.g. http://127.0.0.1:18789. Required.
	Gateway string
	// Name is the device's name as people see it. Required.
	Name string
	// Key is the device identity. Required.
	Key ed25519.PrivateKey
	// HTTPClient sends the requests. Default: 30 s timeout.
	HTTPClient *http.Client
	// PollInterval is the time between polls. Default: 2s.
	PollInterval time.Duration
	// OnPending is called once when the request waits for a person.
	OnPending func(requestID string, expiresAt time.Time)
}

// Result is a completed pairing.
type Result struct {
	DeviceID  string
	Token     string // the device token: keep it secret
	RequestID string // empty when auto-approved
}

// Errors of Pair besides transport errors and *APIError.
var (
	ErrRejected = errors.New("pairing request rejected")
	ErrExpired  = errors.New("pairing request expired before anyone approved it")
)

// Pair runs the whole protocol: request, then poll until approved,
// rejected, expired, or ctx ends.
func Pair(ctx context.Context, opts Options) (*Result, error) {
	s, err := NewSession(opts.Gateway, opts.Key, opts.HTTPClient)
	if err != nil {
		return nil, err
	}
	interval := opts.PollInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	resp, err := s.Request(ctx, opts.Name)
	if err != nil {
		return nil, err
	}
	res := &Result{DeviceID: s.DeviceID(), RequestID: resp.RequestID}
	if resp.Status == pairing.StatusPending && opts.OnPending != nil {
		exp := time.Time{}
		if resp.ExpiresAt != nil {
			exp = *resp.ExpiresAt
		}
		opts.OnPending(resp.RequestID, exp)
	}
	for {
		switch resp.Status {
		case pairing.StatusApproved:
			if resp.DeviceToken == "" {
				return nil, fmt.Errorf("request %s was approved but the gate sent no token (it is handed out once); pair again", res.RequestID)
			}
			res.Token = resp.DeviceToken
			return res, nil
		case pairing.StatusRejected:
			return nil, ErrRejected
		case pairing.StatusPending:
		default:
			return nil, fmt.Errorf("unexpected pairing status %q", resp.Status)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		resp, err = s.Poll(ctx, res.RequestID)
		if err != nil {
			if CodeOf(err) == pairing.CodeUnknownRequest {
				return nil, ErrExpired
			}
			return nil, err
		}
	}
}
