package httpsig

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The Ed25519 test key of RFC 9421 Appendix B.1.4 (JWK d and x).
const (
	rfcEd25519Seed = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"
	rfcEd25519Pub  = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
)

func rfcEd25519Key(t *testing.T) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	seed, err := base64.RawURLEncoding.DecodeString(rfcEd25519Seed)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := base64.RawURLEncoding.DecodeString(rfcEd25519Pub)
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), pub) {
		t.Fatal("RFC 9421 B.1.4 seed does not give the published public key")
	}
	return priv, pub
}

// TestRFC9421B26 verifies the ed25519 example of RFC 9421 Appendix B.2.6, and
// that signing its base with the test key reproduces the published signature
// byte for byte (Ed25519 is deterministic).
func TestRFC9421B26(t *testing.T) {
	priv, pub := rfcEd25519Key(t)
	const wantSig = "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
	v, err := NewEd25519Verifier(Ed25519Config{
		PublicKey: func(keyid string) (ed25519.PublicKey, bool) { return pub, keyid == "test-key-ed25519" },
		Now:       fixedClock(1618884473),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := readRFCRequest(t)
	r.Header.Set("Signature-Input", `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`)
	r.Header.Set("Signature", "sig-b26=:"+wantSig+":")

	label, p, err := v.verifySignature(r)
	if err != nil {
		t.Fatalf("RFC 9421 B.2.6 does not verify: %v", err)
	}
	base, err := signatureBase(incomingMessage(r, "", ""), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(base))); got != wantSig {
		t.Errorf("signing the B.2.6 base gives %s, want %s", got, wantSig)
	}
	if label != "sig-b26" {
		t.Errorf("label %q", label)
	}
	// The example covers no @query and has no nonce, which the policy requires.
	if _, err := v.Verify(r); CodeOf(err) != CodeCoverage {
		t.Errorf("Verify of the B.2.6 example (no @query, no nonce) = %v, want %s", err, CodeCoverage)
	}
	r.Header.Set("Content-Type", "application/jsoN")
	if _, _, err := v.verifySignature(r); CodeOf(err) != CodeBadSignature {
		t.Errorf("tampered content-type: %v, want %s", err, CodeBadSignature)
	}
}

func TestEd25519SignVerifyRoundTrip(t *testing.T) {
	priv, pub := rfcEd25519Key(t)
	_, other, _ := ed25519.GenerateKey(nil)
	v, err := NewEd25519Verifier(Ed25519Config{
		PublicKey: func(keyid string) (ed25519.PublicKey, bool) { return pub, keyid == "dev1" },
	})
	if err != nil {
		t.Fatal(err)
	}
	var seen *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		if _, err := v.Verify(r); err != nil {
			http.Error(w, CodeOf(err), http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	send := func(key ed25519.PrivateKey, keyid, body string, mutate func(*http.Request)) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/x?y=1", strings.NewReader(body))
		if err := SignEd25519(req, keyid, key); err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, strings.TrimSpace(b.String())
	}
	if code, msg := send(priv, "dev1", `{"a":1}`, nil); code != 200 {
		t.Fatalf("valid signature refused: %d %s", code, msg)
	}
	if !strings.Contains(seen.Header.Get("Signature-Input"), `alg="ed25519"`) {
		t.Fatalf("Signature-Input %q lacks alg", seen.Header.Get("Signature-Input"))
	}
	cases := []struct {
		name   string
		key    ed25519.PrivateKey
		keyid  string
		mutate func(*http.Request)
		code   string
	}{
		{"another key", other, "dev1", nil, CodeBadSignature},
		{"unknown keyid", priv, "dev2", nil, CodeUnknownKey},
		{"body swapped", priv, "dev1", func(r *http.Request) {
			r.GetBody = nil
			r.Body = io.NopCloser(strings.NewReader(`{"a":2}`))
			r.ContentLength = 7
		}, CodeDigestMismatch},
		{"path changed", priv, "dev1", func(r *http.Request) { r.URL.Path = "/other" }, CodeBadSignature},
		{"hmac alg claimed", priv, "dev1", func(r *http.Request) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `alg="ed25519"`, `alg="hmac-sha256"`, 1))
		}, CodeBadAlg},
	}
	for _, c := range cases {
		if code, msg := send(c.key, c.keyid, `{"a":1}`, c.mutate); code != 401 || msg != c.code {
			t.Errorf("%s: %d %s, want 401 %s", c.name, code, msg, c.code)
		}
	}

	// A replayed request is refused.
	req, _ := http.NewRequest("GET", srv.URL+"/r", nil)
	if err := SignEd25519(req, "dev1", priv); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 401} {
		resp, err := http.DefaultClient.Do(req.Clone(req.Context()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("send %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}

	// A stale signature is refused.
	req, _ = http.NewRequest("GET", srv.URL+"/old", nil)
	SignEd25519(req, "dev1", priv, WithCreated(time.Now().Add(-time.Hour)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("hour-old signature: %d", resp.StatusCode)
	}
}

func TestNewEd25519VerifierRefusesBadConfig(t *testing.T) {
	pk := func(string) (ed25519.PublicKey, bool) { return nil, false }
	for name, cfg := range map[string]Ed25519Config{
		"no key function":  {},
		"negative max age": {PublicKey: pk, MaxAge: -1},
		"bad scheme":       {PublicKey: pk, Scheme: "ftp"},
		"bad authority":    {PublicKey: pk, Authority: "a/b"},
	} {
		if _, err := NewEd25519Verifier(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := SignEd25519(httptest.NewRequest("GET", "http://x/", nil), "k", ed25519.PrivateKey{1}); err == nil {
		t.Error("short private key accepted")
	}
}
