package pairing

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TokenPrefix starts every device token, so the gate can tell a device token
// from a shared gateway token without trying both.
const TokenPrefix = "cgd_"

// IsDeviceToken reports whether a bearer token is a device token.
func IsDeviceToken(token string) bool { return strings.HasPrefix(token, TokenPrefix) }

// DeviceID is the device id of an Ed25519 public key: the lowercase hex
// SHA-256 of its 32 raw bytes.
func DeviceID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// b64 is the encoding of keys, nonces and signatures on the wire: unpadded
// base64url, strict (no padding, no stray bits), so one value has one form.
var b64 = base64.RawURLEncoding.Strict()

// newToken mints a device token and returns it with the hash that is stored.
func newToken() (token, hash string) {
	var b [32]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	token = TokenPrefix + b64.EncodeToString(b[:])
	return token, hashToken(token)
}

// hashToken is the stored form of a token. Tokens carry 256 random bits, so
// a fast hash is enough: there is nothing to brute-force.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// MaxNameLength is the longest device name, in characters.
const MaxNameLength = 64

// ValidName checks a device name: 1 to MaxNameLength characters of valid
// UTF-8, no control characters, no bidirectional overrides (which could make
// one name look like another in the UI or a terminal), no leading or trailing
// space.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("name is empty")
	case !utf8.ValidString(name):
		return fmt.Errorf("name is not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxNameLength:
		return fmt.Errorf("name is longer than %d characters", MaxNameLength)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("name has leading or trailing space")
	}
	for i, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("name has a control character (U+%04X) at byte %d", r, i)
		}
	}
	return nil
}

// validDeviceID reports whether s is 64 lowercase hex digits.
func validDeviceID(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Device is a paired device as stored and as the admin API shows it
// (without the token hash).
type Device struct {
	ID         string    `json:"device_id"`
	Name       string    `json:"name"`
	PublicKey  string    `json:"public_key"` // unpadded base64url
	CreatedAt  time.Time `json:"created_at"`
	ApprovedAt time.Time `json:"approved_at"`
	ApprovedBy string    `json:"approved_by"` // identity of the approver, "auto:local" for auto-approval
	// TokenHash is the hex SHA-256 of the device token, empty until the
	// device has collected its token. Never leaves the store.
	TokenHash     string     `json:"token_hash,omitempty"`
	TokenIssuedAt *time.Time `json:"token_issued_at,omitempty"`
	LastSeen      *time.Time `json:"last_seen,omitempty"`
	LastIP        string     `json:"last_ip,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedBy     string     `json:"revoked_by,omitempty"`
}

// DeviceView is a device as the admin API lists it: without the token hash,
// with its status.
type DeviceView struct {
	Device
	Status string `json:"status"` // active, awaiting_token or revoked
}

// Device states as the admin API reports them.
const (
	DeviceActive        = "active"         // has a valid token
	DeviceAwaitingToken = "awaiting_token" // approved; the device has not collected its token yet
	DeviceRevoked       = "revoked"
)

// Status is the device's state for people.
func (d *Device) Status() string {
	switch {
	case d.RevokedAt != nil:
		return DeviceRevoked
	case d.TokenHash == "":
		return DeviceAwaitingToken
	}
	return DeviceActive
}

// Request states.
const (
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusRejected = "rejected"
)

// Request is a pairing request: pending until a person decides, then
// approved (until the device collects its token) or rejected (until it
// expires).
type Request struct {
	ID        string     `json:"request_id"`
	DeviceID  string     `json:"device_id"`
	PublicKey string     `json:"public_key"`
	Name      string     `json:"name"`
	ClientIP  string     `json:"client_ip"`
	Client    string     `json:"client,omitempty"` // the rate-limiting key of the requester, for per-client caps
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	DecidedBy string     `json:"decided_by,omitempty"`
}

// newRequestID returns "pr_" and 16 random bytes in base64url.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return "pr_" + b64.EncodeToString(b[:])
}

// validRequestID reports whether s has the form newRequestID makes.
func validRequestID(s string) bool {
	rest, ok := strings.CutPrefix(s, "pr_")
	if !ok || len(rest) != 22 {
		return false
	}
	b, err := b64.DecodeString(rest)
	return err == nil && len(b) == 16
}
