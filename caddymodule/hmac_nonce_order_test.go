package caddymodule

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/httpsig"
)

// withBody returns a copy of the signed req, signature and Content-Digest
// included, carrying body instead: what an attacker who saw req in flight
// can send.
func withBody(req *http.Request, body string) *http.Request {
	c := req.Clone(req.Context())
	c.Body = io.NopCloser(strings.NewReader(body))
	c.ContentLength = int64(len(body))
	c.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	return c
}

// TestHMACTamperedBodyDoesNotBurnTheNonce: an attacker who sees a signed
// request in flight sends it first with another body. The gate refuses it
// (digest_mismatch) without recording its nonce, so the genuine request,
// same signature and nonce, is still accepted, once.
func TestHMACTamperedBodyDoesNotBurnTheNonce(t *testing.T) {
	// max_body (set in a second key's block) is the gate's: 1 KiB.
	e := startHMACGate(t, "hmac ci2 "+hmacKeyNew+" {\n\t\t\tmax_body 1KiB\n\t\t}")
	body := `{"event":"deploy","ref":"main"}`
	genuine := sign(t, e.request(t, "POST", "/hooks/deploy", body), "ci", hmacKey)

	for _, tampered := range []string{`{"event":"deploy","ref":"evil"}`, `{"event":"wipe"}`, ""} {
		if r := send(t, "", withBody(genuine, tampered)); r.status != http.StatusUnauthorized || r.code != httpsig.CodeDigestMismatch {
			t.Fatalf("tampered body %q: status %d code %q, want 401 %s", tampered, r.status, r.code, httpsig.CodeDigestMismatch)
		}
	}
	// A body over max_body is refused before hashing, nonce kept too.
	if r := send(t, "", withBody(genuine, strings.Repeat("x", 1025))); r.status != http.StatusRequestEntityTooLarge || r.code != httpsig.CodeBodyTooLarge {
		t.Fatalf("oversized body: status %d code %q, want 413 %s", r.status, r.code, httpsig.CodeBodyTooLarge)
	}
	wantAdmitted(t, send(t, "", genuine), "ci", body)

	// Once accepted, it is a replay, with its own body or another.
	for _, b := range []string{body, `{"event":"wipe"}`} {
		if r := send(t, "", withBody(genuine, b)); r.status != http.StatusUnauthorized || r.code != httpsig.CodeReplay {
			t.Fatalf("replay with body %q: status %d code %q, want 401 %s", b, r.status, r.code, httpsig.CodeReplay)
		}
	}
}

// TestHMACUnsignedBodyDoesNotBurnTheNonce: a signed GET, which covers no
// content-digest, replayed first with a chunked body is refused
// (digest_missing) without recording its nonce.
func TestHMACUnsignedBodyDoesNotBurnTheNonce(t *testing.T) {
	e := startHMACGate(t, "")
	genuine := sign(t, e.request(t, "GET", "/status", ""), "ci", hmacKey)
	chunked := withBody(genuine, "smuggled")
	chunked.ContentLength = -1
	if r := send(t, "", chunked); r.status != http.StatusUnauthorized || r.code != httpsig.CodeDigestMissing {
		t.Fatalf("body added to a signed GET: status %d code %q, want 401 %s", r.status, r.code, httpsig.CodeDigestMissing)
	}
	wantAdmitted(t, send(t, "", genuine), "ci", "")
	if r := send(t, "", genuine); r.status != http.StatusUnauthorized || r.code != httpsig.CodeReplay {
		t.Fatalf("replay: status %d code %q, want 401 %s", r.status, r.code, httpsig.CodeReplay)
	}
}
