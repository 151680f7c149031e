package httpsig

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

var gateKey = []byte("clawguard-gate-identity-key-0123456789")

// identityChain is client → gate (a real reverse proxy that sets identity
// headers and signs them with IdentityTransport) → upstream (an identity-mode
// Verifier, as the sidecar runs it).
type identityChain struct {
	gate, upstream *testGate
	mu             sync.Mutex
	captured       http.Header // the last headers the upstream received
}

func newIdentityChain(t *testing.T) *identityChain {
	t.Helper()
	ch := &identityChain{}
	ch.upstream = newTestGate(t, Config{Identity: true, Keys: map[string][]byte{"gate": gateKey}})
	verify := ch.upstream.srv.Config.Handler
	ch.upstream.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch.mu.Lock()
		ch.captured = r.Header.Clone()
		ch.mu.Unlock()
		verify.ServeHTTP(w, r)
	})
	target, _ := url.Parse(ch.upstream.srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &IdentityTransport{KeyID: "gate", Key: gateKey}
	ch.gate = &testGate{srv: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for h := range r.Header { // the gate strips what clients send
			if strings.HasPrefix(h, "X-Clawguard-") {
				r.Header.Del(h)
			}
		}
		r.Header.Set("X-Clawguard-Identity", "token:ci")
		r.Header.Set("X-Clawguard-Method", "token")
		proxy.ServeHTTP(w, r)
	}))}
	t.Cleanup(ch.gate.srv.Close)
	return ch
}

func (ch *identityChain) lastHeaders() http.Header {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.captured.Clone()
}

func TestIdentityThroughGate(t *testing.T) {
	ch := newIdentityChain(t)
	expectCode(t, "GET through the gate", ch.gate.send(t, ch.gate.request(t, "GET", "/v1/sandboxes?all=1", "")), 200, "")
	rep := ch.gate.send(t, ch.gate.request(t, "POST", "/v1/exec", `{"argv":["ls"]}`))
	expectCode(t, "POST through the gate", rep, 200, "")
	if rep.Body != `{"argv":["ls"]}` || rep.KeyID != "gate" {
		t.Errorf("upstream saw body %q keyid %q", rep.Body, rep.KeyID)
	}

	req := ch.gate.request(t, "POST", "/v1/exec", `{"argv":["true"]}`)
	req.ContentLength, req.TransferEncoding = -1, []string{"chunked"}
	rep = ch.gate.send(t, req)
	expectCode(t, "chunked POST through the gate (streamed, not covered)", rep, 200, "")
	if rep.Body != `{"argv":["true"]}` {
		t.Errorf("upstream saw chunked body %q", rep.Body)
	}

	// A client's own signature and identity headers are replaced by the gate's.
	req = ch.gate.request(t, "GET", "/", "")
	req.Header.Set("X-Clawguard-Identity", "local")
	Sign(req, "client", testKey, WithLabel(IdentityLabel))
	expectCode(t, "client-sent identity and signature", ch.gate.send(t, req), 200, "")
	if got := ch.lastHeaders().Get("X-Clawguard-Identity"); got != "token:ci" {
		t.Errorf("upstream saw identity %q", got)
	}
}

// TestIdentityForgeries: everything a process that can reach the upstream
// directly (but has no gate key) might try.
func TestIdentityForgeries(t *testing.T) {
	ch := newIdentityChain(t)
	up := ch.upstream

	req := up.request(t, "GET", "/v1/exec", "")
	req.Header.Set("X-Clawguard-Identity", "local")
	expectCode(t, "forged identity, no signature", up.send(t, req), 401, CodeSignatureMissing)

	expectCode(t, "legitimate request", ch.gate.send(t, ch.gate.request(t, "GET", "/v1/approvals", "")), 200, "")
	captured := ch.lastHeaders()
	gateHost := strings.TrimPrefix(ch.gate.srv.URL, "http://")
	replay := func(edit func(*http.Request)) *http.Request {
		r := up.request(t, "GET", "/v1/approvals", "")
		r.Header = captured.Clone()
		r.Host = gateHost
		edit(r)
		return r
	}
	expectCode(t, "captured identity replayed", up.send(t, replay(func(*http.Request) {})), 401, CodeReplay)
	expectCode(t, "captured identity, identity changed", up.send(t, replay(func(r *http.Request) {
		r.Header.Set("X-Clawguard-Identity", "local")
	})), 401, CodeBadSignature)
	expectCode(t, "captured identity, unsigned device header added", up.send(t, replay(func(r *http.Request) {
		r.Header.Set("X-Clawguard-Device", "attacker")
	})), 401, CodeCoverage)
	expectCode(t, "captured identity, other path", up.send(t, replay(func(r *http.Request) {
		r.URL.Path = "/v1/exec"
	})), 401, CodeBadSignature)
	expectCode(t, "captured identity, identity header removed", up.send(t, replay(func(r *http.Request) {
		r.Header.Del("X-Clawguard-Identity")
	})), 401, CodeSignatureMalformed) // a covered field is missing

	// A client's request signature is not an identity signature, even with
	// the gate's key (label and tag differ).
	req = up.request(t, "GET", "/", "")
	req.Header.Set("X-Clawguard-Identity", "local")
	Sign(req, "gate", gateKey, WithHeaders("X-Clawguard-Identity"))
	expectCode(t, "request signature at an identity verifier", up.send(t, req), 401, CodeSignatureMissing)
	req = up.request(t, "GET", "/", "")
	req.Header.Set("X-Clawguard-Identity", "local")
	Sign(req, "gate", gateKey, WithLabel(IdentityLabel), WithHeaders("X-Clawguard-Identity"))
	expectCode(t, "untagged signature under the identity label", up.send(t, req), 401, CodeCoverage)

	// And an identity signature is not a request signature.
	reqMode := newTestGate(t, Config{Keys: map[string][]byte{"gate": gateKey}})
	req = reqMode.request(t, "GET", "/", "")
	req.Header.Set("X-Clawguard-Identity", "local")
	if err := SignIdentity(req, "gate", gateKey); err != nil {
		t.Fatal(err)
	}
	expectCode(t, "identity signature at a request verifier", reqMode.send(t, req), 401, CodeCoverage)
}

func TestSignIdentityRequiresIdentity(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://upstream/", nil)
	if err := SignIdentity(req, "gate", gateKey); err == nil {
		t.Error("SignIdentity signed a request without X-Clawguard-Identity")
	}
	tr := &IdentityTransport{KeyID: "gate", Key: gateKey}
	if _, err := tr.RoundTrip(req); err == nil {
		t.Error("IdentityTransport sent a request without X-Clawguard-Identity")
	}
	req.Header.Set("X-Clawguard-Identity", "local")
	req.Header.Set("X-Clawguard-Device", "d1")
	body := io.NopCloser(strings.NewReader("streamed"))
	req.Body = body
	if err := SignIdentity(req, "gate", gateKey); err != nil {
		t.Fatal(err)
	}
	if req.Body != body || req.Header.Get("Content-Digest") != "" {
		t.Error("SignIdentity read or covered the body")
	}
	in := req.Header.Get("Signature-Input")
	for _, want := range []string{`clawguard=("@method" "@target-uri" "x-clawguard-device" "x-clawguard-identity")`, `tag="clawguard-identity"`, `nonce="`, `keyid="gate"`} {
		if !strings.Contains(in, want) {
			t.Errorf("Signature-Input %q lacks %q", in, want)
		}
	}
}
