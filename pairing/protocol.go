package pairing

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Protocol constants (docs/design.md, "Device pairing").
const (
	// MaxClockSkew is how far signed_at may be from the gate's clock.
	MaxClockSkew = 120 * time.Second
	// MaxBodyBytes bounds every pairing request body.
	MaxBodyBytes = 4 << 10

	pairContext = "clawguard-pair-v1"
	pollContext = "clawguard-poll-v1"
	nonceBytes  = 32
)

// Challenge is the answer of POST /.clawguard/pair/challenge.
type Challenge struct {
	Nonce     string    `json:"nonce"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PairRequest is the body of POST /.clawguard/pair/request.
type PairRequest struct {
	DeviceID  string `json:"device_id"`
	PublicKey string `json:"public_key"`
	Name      string `json:"name"`
	Nonce     string `json:"nonce"`
	SignedAt  int64  `json:"signed_at"` // unix milliseconds
	Signature string `json:"signature"`
}

// PollRequest is the body of POST /.clawguard/pair/poll.
type PollRequest struct {
	RequestID string `json:"request_id"`
	DeviceID  string `json:"device_id"`
	Nonce     string `json:"nonce"`
	SignedAt  int64  `json:"signed_at"`
	Signature string `json:"signature"`
}

// PairResponse is the answer to a pairing request or a poll.
type PairResponse struct {
	Status      string     `json:"status"` // pending, approved or rejected
	RequestID   string     `json:"request_id,omitempty"`
	DeviceID    string     `json:"device_id,omitempty"`
	DeviceToken string     `json:"device_token,omitempty"` // with approved, handed out once
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`   // with pending
}

// Error is a refusal of the pairing protocol or the admin API, with the
// HTTP status and the stable code of its JSON body.
type Error struct {
	Status int
	Code   string
	Msg    string
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

// Refusal codes of the pairing endpoints.
const (
	CodeBadRequest     = "bad_request"        // malformed JSON or a field in the wrong format
	CodeInvalidNonce   = "invalid_nonce"      // unknown, used or expired nonce
	CodeIDMismatch     = "device_id_mismatch" // device_id is not the hash of the key (or of the request's key)
	CodeStaleSignature = "stale_signature"    // signed_at more than MaxClockSkew off
	CodeBadSignature   = "bad_signature"      // the Ed25519 signature does not verify
	CodeUnknownRequest = "unknown_request"    // no such request, or it expired
	CodeTooMany        = "too_many_pending"   // pending-request or challenge capacity reached
)

func badRequest(format string, args ...any) *Error {
	return &Error{Status: 400, Code: CodeBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// decodeStrict decodes one JSON object into v: unknown fields, trailing data
// and bodies over MaxBodyBytes are errors that name what is wrong.
func decodeStrict(body []byte, v any) error {
	if len(body) > MaxBodyBytes {
		return badRequest("body is larger than %d bytes", MaxBodyBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return badRequest("invalid JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return badRequest("field %q: want a JSON %s, got %s", te.Field, te.Type, te.Value)
		case errors.Is(err, io.EOF):
			return badRequest("empty body: want a JSON object")
		}
		return badRequest("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("trailing data after the JSON object")
	}
	return nil
}

// DecodePairRequest parses and checks the form of a pairing request body.
// It does not check the nonce or the signature (see Verify).
func DecodePairRequest(body []byte) (*PairRequest, error) {
	var p PairRequest
	if err := decodeStrict(body, &p); err != nil {
		return nil, err
	}
	if !validDeviceID(p.DeviceID) {
		return nil, badRequest("device_id: want 64 lowercase hex digits (SHA-256 of the public key)")
	}
	if _, err := decodeFixed("public_key", p.PublicKey, ed25519.PublicKeySize); err != nil {
		return nil, err
	}
	if err := ValidName(p.Name); err != nil {
		return nil, badRequest("name: %v", err)
	}
	if err := checkSigned(p.Nonce, p.SignedAt, p.Signature); err != nil {
		return nil, err
	}
	return &p, nil
}

// DecodePollRequest parses and checks the form of a poll body.
func DecodePollRequest(body []byte) (*PollRequest, error) {
	var p PollRequest
	if err := decodeStrict(body, &p); err != nil {
		return nil, err
	}
	if !validRequestID(p.RequestID) {
		return nil, badRequest("request_id: not a request id (pr_ and 22 base64url characters)")
	}
	if !validDeviceID(p.DeviceID) {
		return nil, badRequest("device_id: want 64 lowercase hex digits (SHA-256 of the public key)")
	}
	if err := checkSigned(p.Nonce, p.SignedAt, p.Signature); err != nil {
		return nil, err
	}
	return &p, nil
}

func checkSigned(nonce string, signedAt int64, sig string) error {
	if _, err := decodeFixed("nonce", nonce, nonceBytes); err != nil {
		return err
	}
	if signedAt <= 0 {
		return badRequest("signed_at: want unix milliseconds")
	}
	_, err := decodeFixed("signature", sig, ed25519.SignatureSize)
	return err
}

// decodeFixed decodes a base64url field that must hold exactly n bytes.
func decodeFixed(field, s string, n int) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, badRequest("%s: not unpadded base64url: %v", field, err)
	}
	if len(b) != n {
		return nil, badRequest("%s: %d bytes, want %d", field, len(b), n)
	}
	return b, nil
}

// SignedMessage is the string a pairing request's signature covers.
func (p *PairRequest) SignedMessage() string {
	return pairContext + "|" + p.DeviceID + "|" + p.Nonce + "|" + strconv.FormatInt(p.SignedAt, 10) + "|" + p.Name
}

// SignedMessage is the string a poll's signature covers.
func (p *PollRequest) SignedMessage() string {
	return pollContext + "|" + p.DeviceID + "|" + p.RequestID + "|" + p.Nonce + "|" + strconv.FormatInt(p.SignedAt, 10)
}

// Verify checks that the device id is the key's, that signed_at is within
// MaxClockSkew of now, and the signature. The nonce is the caller's (it
// needs the nonce store).
func (p *PairRequest) Verify(now time.Time) error {
	pub, err := decodeFixed("public_key", p.PublicKey, ed25519.PublicKeySize)
	if err != nil {
		return err
	}
	if DeviceID(pub) != p.DeviceID {
		return &Error{Status: 401, Code: CodeIDMismatch, Msg: "device_id is not the SHA-256 of public_key"}
	}
	return verifySigned(pub, p.SignedMessage(), p.SignedAt, p.Signature, now)
}

// Verify checks a poll's signature against the key of the request it polls
// (pub), and signed_at.
func (p *PollRequest) Verify(pub ed25519.PublicKey, now time.Time) error {
	return verifySigned(pub, p.SignedMessage(), p.SignedAt, p.Signature, now)
}

func verifySigned(pub ed25519.PublicKey, msg string, signedAt int64, sig string, now time.Time) error {
	skew := now.Sub(time.UnixMilli(signedAt))
	if skew > MaxClockSkew || skew < -MaxClockSkew {
		return &Error{Status: 401, Code: CodeStaleSignature,
			Msg: fmt.Sprintf("signed_at is %s off the gate's clock; at most %s is accepted (check the device's clock)", skew.Round(time.Second), MaxClockSkew)}
	}
	s, err := decodeFixed("signature", sig, ed25519.SignatureSize)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, []byte(msg), s) {
		return &Error{Status: 401, Code: CodeBadSignature, Msg: "signature does not verify"}
	}
	return nil
}

// NewPairRequest builds and signs a pairing request (the device side).
func NewPairRequest(key ed25519.PrivateKey, name, nonce string, now time.Time) *PairRequest {
	pub := key.Public().(ed25519.PublicKey)
	p := &PairRequest{
		DeviceID:  DeviceID(pub),
		PublicKey: b64.EncodeToString(pub),
		Name:      name,
		Nonce:     nonce,
		SignedAt:  now.UnixMilli(),
	}
	p.Signature = b64.EncodeToString(ed25519.Sign(key, []byte(p.SignedMessage())))
	return p
}

// NewPollRequest builds and signs a poll (the device side).
func NewPollRequest(key ed25519.PrivateKey, requestID, nonce string, now time.Time) *PollRequest {
	p := &PollRequest{
		RequestID: requestID,
		DeviceID:  DeviceID(key.Public().(ed25519.PublicKey)),
		Nonce:     nonce,
		SignedAt:  now.UnixMilli(),
	}
	p.Signature = b64.EncodeToString(ed25519.Sign(key, []byte(p.SignedMessage())))
	return p
}
