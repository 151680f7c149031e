package openclaw

import (
	"errors"
	"fmt"
	"time"
)

// Phase is where a Node's connection is.
type Phase int

const (
	// PhaseConnecting: dialing and handshaking.
	PhaseConnecting Phase = iota
	// PhasePairing: the gateway refused the connect until an operator
	// approves this device (State.PairingRequestID names the request); the
	// node retries with backoff.
	PhasePairing
	// PhaseConnected: hello-ok received, invokes are served.
	PhaseConnected
	// PhaseDisconnected: the connection ended (State.Err says why); the
	// node retries after State.RetryIn unless Run is returning.
	PhaseDisconnected
)

func (p Phase) String() string {
	switch p {
	case PhaseConnecting:
		return "connecting"
	case PhasePairing:
		return "pairing"
	case PhaseConnected:
		return "connected"
	case PhaseDisconnected:
		return "disconnected"
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// State is reported to Node.OnState on every change.
type State struct {
	Phase Phase
	// Err is why the connection ended or the connect was refused
	// (disconnected, pairing).
	Err error
	// PairingRequestID is the gateway's pairing request (pairing).
	PairingRequestID string
	// RetryIn is the wait before the next attempt (pairing, disconnected);
	// 0 when Run is returning.
	RetryIn time.Duration
	// Protocol is the negotiated protocol version (connected).
	Protocol int
}

// TokenStore keeps the device token the gateway issues in hello-ok, so
// that later connects can authenticate with it. Load returns "" and no
// error when there is none. The token is a credential: store it encrypted
// (the vault), never in plain text.
type TokenStore interface {
	LoadDeviceToken() (string, error)
	SaveDeviceToken(token string) error
}

// ConnectError is a connect the gateway refused.
type ConnectError struct {
	// Code is the error code (INVALID_REQUEST, NOT_PAIRED, UNAVAILABLE).
	Code string
	// Detail is error.details.code (AUTH_TOKEN_MISMATCH, PAIRING_REQUIRED, …).
	Detail string
	// Reason is error.details.reason or error.details.authReason.
	Reason  string
	Message string
	// RequestID is the pairing request (Detail PAIRING_REQUIRED).
	RequestID string
	// RetryAfter is the gateway's retryAfterMs, 0 when it gave none.
	RetryAfter time.Duration
}

func (e *ConnectError) Error() string {
	s := "gateway refused the connect: " + e.Message
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Permanent reports whether retrying cannot help without a change of
// configuration: a wrong or missing shared secret, an unsupported
// protocol. Run returns such an error. Pairing, rate limits, a stale device
// token and everything else are retried.
func (e *ConnectError) Permanent() bool {
	switch e.Detail {
	case DetailProtocolMismatch, DetailClientVersionMismatch,
		DetailAuthTokenMissing, DetailAuthTokenMismatch, DetailAuthTokenNotConfigured,
		DetailAuthPasswordMissing, DetailAuthPasswordMismatch, DetailAuthPasswordNotConfigured,
		DetailAuthBootstrapInvalid, DetailAuthScopeMismatch, DetailDeviceIdentityRequired:
		return true
	}
	return false
}

// PinError is a gateway whose TLS certificate does not match
// Node.TLSFingerprint. The handshake fails before any request, so no
// credential reached that server.
type PinError struct {
	Want, Got string
}

func (e *PinError) Error() string {
	return fmt.Sprintf("gateway TLS certificate fingerprint mismatch: pinned sha256:%s, got sha256:%s", e.Want, e.Got)
}

// ConfigError is a Node configuration that cannot work; Run returns it at
// once.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return "openclaw: Node." + e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// permanent reports whether Run must return err instead of retrying.
func permanent(err error) bool {
	var ce *ConnectError
	var cfg *ConfigError
	return errors.As(err, &cfg) || errors.As(err, &ce) && ce.Permanent()
}

// Interface guards
var (
	_ error = (*ConnectError)(nil)
	_ error = (*PinError)(nil)
	_ error = (*ConfigError)(nil)
)
