package openclaw

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestPayloadKnownAnswer: the signed strings OpenClaw's
// buildDeviceAuthPayloadV3/buildDeviceAuthPayload produce for these
// fields (platform "Win32 " and deviceFamily " Desktop" normalized to
// "win32" and "desktop").
func TestPayloadKnownAnswer(t *testing.T) {
	a := DeviceAuth{
		DeviceID: "device-1", ClientID: "cli", ClientMode: "ui", Role: "operator",
		Scopes: []string{"operator.admin"}, SignedAtMs: 1737264000000, Token: "secret-token",
		Nonce: "nonce-123", Platform: "Win32 ", DeviceFamily: " Desktop",
	}
	if got, want := a.PayloadV3(), "v3|device-1|cli|ui|operator|operator.admin|1737264000000|secret-token|nonce-123|win32|desktop"; got != want {
		t.Errorf("v3:\n got %s\nwant %s", got, want)
	}
	if got, want := a.PayloadV2(), "v2|device-1|cli|ui|operator|operator.admin|1737264000000|secret-token|nonce-123"; got != want {
		t.Errorf("v2:\n got %s\nwant %s", got, want)
	}
	a.Scopes, a.Token, a.Platform, a.DeviceFamily = []string{"a", "b"}, "", "\u00a0LINUX\ufeff", "ÄB"
	if got, want := a.PayloadV3(), "v3|device-1|cli|ui|operator|a,b|1737264000000||nonce-123|linux|Äb"; got != want {
		t.Errorf("v3 normalization:\n got %s\nwant %s", got, want)
	}
}

func TestDeviceID(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	sum := sha256.Sum256(pub)
	if got := DeviceID(pub); got != hex.EncodeToString(sum[:]) || len(got) != 64 {
		t.Errorf("DeviceID = %s", got)
	}
}

// TestVerifyRefusesTampering: a signature verifies for the exact fields
// signed, and for no change of any signed field, another key, or a
// mangled encoding.
func TestVerifyRefusesTampering(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	a := DeviceAuth{DeviceID: DeviceID(pub), ClientID: ClientID, ClientMode: ClientMode, Role: RoleNode,
		Scopes: []string{}, SignedAtMs: 1, Token: "t", Nonce: "n", Platform: "linux"}
	sig := a.Sign(key)
	if v, err := a.Verify(pub, sig); err != nil || v != "v3" {
		t.Fatalf("genuine signature: %q %v", v, err)
	}
	v2 := EncodeKey(ed25519.Sign(key, []byte(a.PayloadV2())))
	if v, err := a.Verify(pub, v2); err != nil || v != "v2" {
		t.Fatalf("v2 signature: %q %v", v, err)
	}
	for name, mod := range map[string]func(*DeviceAuth){
		"device":   func(d *DeviceAuth) { d.DeviceID = "x" },
		"client":   func(d *DeviceAuth) { d.ClientID = "cli" },
		"mode":     func(d *DeviceAuth) { d.ClientMode = "ui" },
		"role":     func(d *DeviceAuth) { d.Role = "operator" },
		"scopes":   func(d *DeviceAuth) { d.Scopes = []string{"operator.admin"} },
		"time":     func(d *DeviceAuth) { d.SignedAtMs = 2 },
		"token":    func(d *DeviceAuth) { d.Token = "other" },
		"nonce":    func(d *DeviceAuth) { d.Nonce = "other" },
		"platform": func(d *DeviceAuth) { d.Platform = "darwin" },
	} {
		b := a
		mod(&b)
		if _, err := b.Verify(pub, sig); err == nil {
			t.Errorf("%s changed: signature still verifies", name)
		}
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := a.Verify(other, sig); err == nil {
		t.Error("another key verifies the signature")
	}
	if _, err := a.Verify(pub, "!!"+sig); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("mangled encoding: %v", err)
	}
}

func TestParsePublicKey(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	got, err := ParsePublicKey(EncodeKey(pub) + "=")
	if err != nil || !got.Equal(pub) {
		t.Fatalf("padded key: %v", err)
	}
	if _, err := ParsePublicKey(EncodeKey(pub[:31])); err == nil || !strings.Contains(err.Error(), "31 bytes") {
		t.Errorf("short key: %v", err)
	}
	if _, err := ParsePublicKey("a+b/"); err == nil {
		t.Error("standard base64 accepted as base64url")
	}
}

func TestConnectErrorPermanent(t *testing.T) {
	for detail, want := range map[string]bool{
		DetailAuthTokenMismatch:       true,
		DetailAuthPasswordMissing:     true,
		DetailProtocolMismatch:        true,
		DetailDeviceIdentityRequired:  true,
		DetailPairingRequired:         false,
		DetailAuthRateLimited:         false,
		DetailAuthDeviceTokenMismatch: false,
		DetailAuthUnauthorized:        false,
		DetailDeviceSignatureExpired:  false,
		"":                            false,
	} {
		err := error(&ConnectError{Detail: detail})
		if got := permanent(err); got != want {
			t.Errorf("%q: permanent = %v, want %v", detail, got, want)
		}
	}
	if !permanent(&ConfigError{Field: "Gateway", Err: errors.New("x")}) {
		t.Error("a ConfigError is retried")
	}
}

// TestCredentialsNotLogged: the types that carry credentials log redacted.
func TestCredentialsNotLogged(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "auth", ConnectAuth{Token: "tok-1", Password: "pw-2", DeviceToken: "dt-3"},
		"hello", HelloAuth{DeviceToken: "dt-4", Role: "node"})
	out := buf.String()
	for _, secret := range []string{"tok-1", "pw-2", "dt-3", "dt-4"} {
		if strings.Contains(out, secret) {
			t.Errorf("%s logged: %s", secret, out)
		}
	}
	if !strings.Contains(out, `"device_token":true`) || !strings.Contains(out, "[redacted]") {
		t.Errorf("log: %s", out)
	}
}
