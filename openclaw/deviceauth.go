package openclaw

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// DeviceID is OpenClaw's device id of an Ed25519 key: the hex SHA-256 of
// the raw 32-byte public key.
func DeviceID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// EncodeKey is the connect request's form of a public key or signature:
// unpadded base64url of the raw bytes.
func EncodeKey(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeKey reads base64url with or without padding, as OpenClaw's
// gateway does.
func DecodeKey(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// ParsePublicKey decodes a connect request's device.publicKey, which must
// be a raw Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := DecodeKey(s)
	if err != nil {
		return nil, fmt.Errorf("device public key: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("device public key: %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// DeviceAuth is what a device signs in its connect request. The signed
// string binds the device to the gateway's nonce, the client, the role and
// scopes, the time and the credential it presents.
type DeviceAuth struct {
	DeviceID   string
	ClientID   string
	ClientMode string
	Role       string
	Scopes     []string
	SignedAtMs int64
	// Token is the auth.token (or, without one, auth.deviceToken or
	// auth.bootstrapToken) of the same request; empty when none is sent.
	Token        string
	Nonce        string
	Platform     string
	DeviceFamily string
}

// PayloadV3 is the v3 signed string:
// v3|deviceId|clientId|clientMode|role|scopes|signedAtMs|token|nonce|platform|deviceFamily,
// scopes joined by commas, platform and deviceFamily trimmed and with ASCII
// upper case lowered.
func (a DeviceAuth) PayloadV3() string {
	return strings.Join(append(a.fields("v3"), normalizeMetadata(a.Platform), normalizeMetadata(a.DeviceFamily)), "|")
}

// PayloadV2 is the v2 signed string, v3 without platform and deviceFamily.
// Gateways still accept it; the node signs v3.
func (a DeviceAuth) PayloadV2() string {
	return strings.Join(a.fields("v2"), "|")
}

func (a DeviceAuth) fields(version string) []string {
	return []string{version, a.DeviceID, a.ClientID, a.ClientMode, a.Role,
		strings.Join(a.Scopes, ","), strconv.FormatInt(a.SignedAtMs, 10), a.Token, a.Nonce}
}

// Sign signs the v3 payload with the device key and returns the signature
// in its connect request form.
func (a DeviceAuth) Sign(key ed25519.PrivateKey) string {
	return EncodeKey(ed25519.Sign(key, []byte(a.PayloadV3())))
}

// Verify reports which payload version a signature is valid for ("v3" or
// "v2", v3 tried first as OpenClaw's gateway does), or an error.
func (a DeviceAuth) Verify(pub ed25519.PublicKey, signature string) (string, error) {
	sig, err := DecodeKey(signature)
	if err != nil {
		if sig, err = base64.StdEncoding.DecodeString(signature); err != nil {
			return "", errors.New("device signature: not base64url")
		}
	}
	if ed25519.Verify(pub, []byte(a.PayloadV3()), sig) {
		return "v3", nil
	}
	if ed25519.Verify(pub, []byte(a.PayloadV2()), sig) {
		return "v2", nil
	}
	return "", errors.New("device signature: matches neither the v3 nor the v2 payload")
}

// normalizeMetadata is OpenClaw's normalization of platform and
// deviceFamily for signing: JavaScript's trim, then A-Z lowered (other
// letters are left alone).
func normalizeMetadata(s string) string {
	s = strings.TrimFunc(s, isJSSpace)
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// isJSSpace is what String.prototype.trim removes: WhiteSpace and
// LineTerminator of ECMAScript (which differ from unicode.IsSpace in U+0085
// and U+FEFF).
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xA0, 0xFEFF, 0x2028, 0x2029:
		return true
	}
	return unicode.Is(unicode.Zs, r)
}
