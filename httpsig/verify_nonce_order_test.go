package httpsig

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestVerifyRefusedBodyKeepsTheNonce: a signed request replayed with a body
// that fails the Content-Digest check, is over the limit, or is added to a
// signature without content-digest is refused without recording the nonce,
// so the genuine request still gets in, once.
func TestVerifyRefusedBodyKeepsTheNonce(t *testing.T) {
	g := newTestGate(t, Config{MaxBodyBytes: 64})
	genuine := g.signed(t, "POST", "/hooks/deploy", "original body")
	tampered := again(t, genuine)
	tampered.Body = io.NopCloser(strings.NewReader("tampered body"))
	expectCode(t, "tampered body", g.send(t, tampered), 401, CodeDigestMismatch)
	tampered = again(t, genuine)
	tampered.Body, tampered.ContentLength = io.NopCloser(strings.NewReader(strings.Repeat("x", 65))), 65
	expectCode(t, "body over the limit", g.send(t, tampered), 413, CodeBodyTooLarge)
	expectCode(t, "genuine request after the tampered ones", g.send(t, again(t, genuine)), 200, "")
	expectCode(t, "replay of the accepted request", g.send(t, again(t, genuine)), 401, CodeReplay)

	get := g.signed(t, "GET", "/status", "")
	smuggled := again(t, get)
	smuggled.Body, smuggled.ContentLength = io.NopCloser(strings.NewReader("smuggled")), -1
	expectCode(t, "chunked body on a signature without content-digest", g.send(t, smuggled), 401, CodeDigestMissing)
	expectCode(t, "genuine GET after it", g.send(t, again(t, get)), 200, "")
	expectCode(t, "replay of the GET", g.send(t, again(t, get)), 401, CodeReplay)
	if n := g.replays.Load(); n != 2 {
		t.Errorf("OnReplay called %d times, want 2", n)
	}
}

// readCounter counts the bytes read from it.
type readCounter struct {
	r io.Reader
	n int
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestVerifyReplayIsRefusedBeforeTheBody: a replay is refused without
// reading its body, so replaying a captured request cannot make the
// verifier buffer max_body bytes each time.
func TestVerifyReplayIsRefusedBeforeTheBody(t *testing.T) {
	v, err := NewVerifier(Config{Keys: map[string][]byte{"client": testKey}})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("payload ", 1024)
	signed := httptest.NewRequest("POST", "http://gate.example/hooks", strings.NewReader(body))
	if err := Sign(signed, "client", testKey); err != nil {
		t.Fatal(err)
	}
	send := func() (*readCounter, error) {
		r := signed.Clone(signed.Context())
		rc := &readCounter{r: strings.NewReader(body)}
		r.Body = io.NopCloser(rc)
		_, err := v.Verify(r)
		return rc, err
	}
	if rc, err := send(); err != nil || rc.n != len(body) {
		t.Fatalf("first use: %v, %d of %d body bytes read", err, rc.n, len(body))
	}
	rc, err := send()
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeReplay {
		t.Fatalf("replay: %v, want %s", err, CodeReplay)
	}
	if rc.n != 0 {
		t.Fatalf("replay: %d body bytes read before refusing it", rc.n)
	}
}
