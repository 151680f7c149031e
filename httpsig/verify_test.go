package httpsig

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawguard/clawguard/httpsig/sfv"
)

var (
	testKey  = []byte("clawguard-test-key-0123456789abcdef")
	otherKey = []byte("clawguard-other-key-0123456789abcdef")
)

// testGate is a real HTTP server whose handler does what the gate will do:
// Verify, then answer {"error","code"} with the refusal's status, or 200
// with what the handler saw.
type testGate struct {
	v       *Verifier
	srv     *httptest.Server
	replays atomic.Int64
}

type gateReply struct {
	Status int
	Error  string `json:"error"`
	Code   string `json:"code"`
	KeyID  string `json:"keyid"`
	Body   string `json:"body"`
}

func newTestGate(t *testing.T, cfg Config) *testGate {
	t.Helper()
	g := &testGate{}
	if cfg.Keys == nil {
		cfg.Keys = map[string][]byte{"client": testKey}
	}
	cfg.OnReplay = func() { g.replays.Add(1) }
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.v = v
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		res, err := v.Verify(r)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("Verify returned %T %v, not *Error", err, err)
				w.WriteHeader(500)
				return
			}
			w.WriteHeader(e.HTTPStatus())
			json.NewEncoder(w).Encode(map[string]string{"error": e.Message, "code": e.Code})
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading verified body: %v", err)
		}
		json.NewEncoder(w).Encode(map[string]string{"keyid": res.KeyID, "body": string(body)})
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *testGate) send(t *testing.T, req *http.Request) gateReply {
	t.Helper()
	resp, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep gateReply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("decoding reply (status %d): %v", resp.StatusCode, err)
	}
	rep.Status = resp.StatusCode
	return rep
}

func (g *testGate) request(t *testing.T, method, path, body string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func (g *testGate) signed(t *testing.T, method, path, body string, opts ...SignOption) *http.Request {
	t.Helper()
	req := g.request(t, method, path, body)
	if err := Sign(req, "client", testKey, opts...); err != nil {
		t.Fatal(err)
	}
	return req
}

// again returns a byte-for-byte copy of a request that was already sent.
func again(t *testing.T, req *http.Request) *http.Request {
	t.Helper()
	c := req.Clone(req.Context())
	if req.GetBody != nil {
		c.Body, _ = req.GetBody()
	}
	return c
}

// craft signs req with an arbitrary Signature-Input inner list, computing a
// valid HMAC over it, to test rules the signer itself never breaks.
func craft(t *testing.T, req *http.Request, label, innerList string, key []byte) {
	t.Helper()
	_, p, _, err := selectSignature(label+"="+innerList, label+"=::", label)
	if err != nil {
		t.Fatal(err)
	}
	m, err := outgoingMessage(req)
	if err != nil {
		t.Fatal(err)
	}
	base, err := signatureBase(m, p)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := sfv.MarshalItem(sfv.Item{Value: hmacSHA256(key, []byte(base))})
	req.Header.Add("Signature-Input", label+"="+innerList)
	req.Header.Add("Signature", label+"="+sig)
}

func expectCode(t *testing.T, what string, rep gateReply, status int, code string) {
	t.Helper()
	if rep.Status != status || rep.Code != code {
		t.Errorf("%s: got %d %q (%s), want %d %q", what, rep.Status, rep.Code, rep.Error, status, code)
	}
	if code != "" && rep.Error == "" {
		t.Errorf("%s: refusal without a message", what)
	}
}

func TestVerifyAccepts(t *testing.T) {
	g := newTestGate(t, Config{})
	rep := g.send(t, g.signed(t, "GET", "/v1/status?x=1&y=%2F", ""))
	expectCode(t, "signed GET", rep, 200, "")
	if rep.KeyID != "client" {
		t.Errorf("keyid %q", rep.KeyID)
	}
	body := strings.Repeat(`{"k":"v"}`, 1000)
	rep = g.send(t, g.signed(t, "POST", "/hooks/deploy", body))
	expectCode(t, "signed POST", rep, 200, "")
	if rep.Body != body {
		t.Errorf("the handler saw a %d-byte body, want the %d verified bytes", len(rep.Body), len(body))
	}
	req := g.request(t, "PUT", "/x", "data")
	req.Header.Set("X-Request-Id", "42")
	if err := Sign(req, "client", testKey, WithDigest(DigestSHA512), WithHeaders("X-Request-Id")); err != nil {
		t.Fatal(err)
	}
	expectCode(t, "sha-512 digest and a covered header", g.send(t, req), 200, "")
	if err := Sign(g.request(t, "GET", "/", ""), "client", testKey, WithHeaders("X-Absent")); err == nil {
		t.Error("Sign covered a header the request does not have")
	}
}

func TestVerifyExtraHeadersAndMultipleLines(t *testing.T) {
	g := newTestGate(t, Config{})
	req := g.request(t, "GET", "/", "")
	req.Header.Add("X-Tenant", "a")
	req.Header.Add("X-Tenant", "b")
	if err := Sign(req, "client", testKey, WithHeaders("X-Tenant")); err != nil {
		t.Fatal(err)
	}
	expectCode(t, "covered header with two lines", g.send(t, req), 200, "")
	req = again(t, req)
	req.Header["X-Tenant"] = []string{"b", "a"}
	req.Header.Set("Signature-Input", strings.Replace(req.Header.Get("Signature-Input"), "nonce=\"", "nonce=\"x", 1))
	expectCode(t, "reordered header lines", g.send(t, req), 401, CodeBadSignature)
}

func TestVerifyReplay(t *testing.T) {
	g := newTestGate(t, Config{})
	req := g.signed(t, "POST", "/hooks/deploy", "payload")
	expectCode(t, "first use", g.send(t, req), 200, "")
	expectCode(t, "replay", g.send(t, again(t, req)), 401, CodeReplay)
	expectCode(t, "second replay", g.send(t, again(t, req)), 401, CodeReplay)
	if n := g.replays.Load(); n != 2 {
		t.Errorf("OnReplay called %d times, want 2", n)
	}
	// The same nonce under another key is another client's nonce.
	g2 := newTestGate(t, Config{Keys: map[string][]byte{"client": testKey, "other": otherKey}})
	r1 := g2.request(t, "GET", "/", "")
	r2 := g2.request(t, "GET", "/", "")
	Sign(r1, "client", testKey, WithNonce("shared-nonce"))
	Sign(r2, "other", otherKey, WithNonce("shared-nonce"))
	expectCode(t, "nonce under key client", g2.send(t, r1), 200, "")
	expectCode(t, "same nonce under key other", g2.send(t, r2), 200, "")
}

func TestVerifyTime(t *testing.T) {
	now := time.Now()
	// A cache that started before the signatures below were made: a fresh
	// one refuses anything created before its start (TestNonceCacheRestart).
	g := newTestGate(t, Config{MaxAge: time.Minute, Nonces: NewNonceCache(0, now.Add(-time.Hour))})
	expectCode(t, "created 61s ago", g.send(t, g.signed(t, "GET", "/", "", WithCreated(now.Add(-61*time.Second)))), 401, CodeExpired)
	expectCode(t, "created 55s ago", g.send(t, g.signed(t, "GET", "/", "", WithCreated(now.Add(-55*time.Second)))), 200, "")
	expectCode(t, "created 10s ahead", g.send(t, g.signed(t, "GET", "/", "", WithCreated(now.Add(10*time.Second)))), 401, CodeFuture)
	expectCode(t, "created 3s ahead", g.send(t, g.signed(t, "GET", "/", "", WithCreated(now.Add(3*time.Second)))), 200, "")

	req := g.request(t, "GET", "/", "")
	craft(t, req, "sig1", fmt.Sprintf(`("@method" "@target-uri");created=%d;expires=%d;nonce="e1";keyid="client"`, now.Unix()-5, now.Unix()-1), testKey)
	expectCode(t, "expires passed", g.send(t, req), 401, CodeExpired)
	req = g.request(t, "GET", "/", "")
	craft(t, req, "sig1", `("@method" "@target-uri");nonce="n1";keyid="client"`, testKey)
	expectCode(t, "no created", g.send(t, req), 401, CodeCreatedMissing)
	req = g.request(t, "GET", "/", "")
	craft(t, req, "sig1", fmt.Sprintf(`("@method" "@target-uri");created=%d;keyid="client"`, now.Unix()), testKey)
	expectCode(t, "no nonce", g.send(t, req), 401, CodeNonceMissing)
}

func TestVerifyTampering(t *testing.T) {
	g := newTestGate(t, Config{})

	req := g.signed(t, "POST", "/hooks/deploy", "original body")
	req.Body = io.NopCloser(strings.NewReader("tampered body"))
	expectCode(t, "tampered body, same length", g.send(t, req), 401, CodeDigestMismatch)

	req = g.signed(t, "POST", "/hooks/deploy", "original body")
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader("longer tampered body")), 20
	expectCode(t, "tampered body, other length", g.send(t, req), 401, CodeDigestMismatch)

	req = g.signed(t, "GET", "/v1/status", "")
	req.URL.Path = "/v1/admin"
	expectCode(t, "tampered path", g.send(t, req), 401, CodeBadSignature)

	req = g.signed(t, "GET", "/v1/status?user=alice", "")
	req.URL.RawQuery = "user=root"
	expectCode(t, "tampered query", g.send(t, req), 401, CodeBadSignature)

	req = g.signed(t, "GET", "/v1/status", "")
	req.Method = "DELETE"
	expectCode(t, "tampered method", g.send(t, req), 401, CodeBadSignature)

	req = g.signed(t, "GET", "/", "")
	req.Host = "evil.example"
	expectCode(t, "tampered host", g.send(t, req), 401, CodeBadSignature)

	req = g.signed(t, "POST", "/", "body")
	req.Header.Set("Content-Digest", mustDigest(t, DigestSHA256, "other"))
	req.Body = io.NopCloser(strings.NewReader("other"))
	req.ContentLength = 5
	expectCode(t, "body and digest both replaced", g.send(t, req), 401, CodeBadSignature)
}

func mustDigest(t *testing.T, alg, body string) string {
	t.Helper()
	d, err := ContentDigest(alg, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestVerifyDigestRules(t *testing.T) {
	g := newTestGate(t, Config{})

	req := g.signed(t, "POST", "/", "") // no body: no content-digest
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader("smuggled")), 8
	expectCode(t, "body without content-digest", g.send(t, req), 401, CodeDigestMissing)

	req = g.signed(t, "POST", "/", "")
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader("smuggled")), -1 // chunked
	expectCode(t, "chunked body without content-digest", g.send(t, req), 401, CodeDigestMissing)

	req = g.signed(t, "POST", "/", "")
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader("")), -1
	req.TransferEncoding = []string{"chunked"}
	expectCode(t, "empty chunked body without content-digest", g.send(t, req), 200, "")

	req = g.signed(t, "POST", "/", "chunked and signed")
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	expectCode(t, "chunked body with content-digest", g.send(t, req), 200, "")

	for _, tc := range []struct {
		name, digest, code string
	}{
		{"md5 only", `md5=:XUFAKrxLKna5cZ2REBfFkg==:`, CodeDigestMissing},
		{"sha-256 wrong length", `sha-256=:AAAA:`, CodeDigestMalformed},
		{"sha-256 a token", `sha-256=abc`, CodeDigestMalformed},
		{"not a dictionary", `sha-256=:abc`, CodeDigestMalformed},
		{"right sha-256, wrong sha-512", mustDigest(t, DigestSHA256, "body") + ", " + mustDigest(t, DigestSHA512, "xxxx"), CodeDigestMismatch},
	} {
		req := g.request(t, "POST", "/", "body")
		req.Header.Set("Content-Digest", tc.digest)
		craft(t, req, "sig1", fmt.Sprintf(`("@method" "@target-uri" "content-digest");created=%d;nonce="%s";keyid="client"`, time.Now().Unix(), tc.name), testKey)
		expectCode(t, tc.name, g.send(t, req), 401, tc.code)
	}
	req = g.request(t, "POST", "/", "body")
	req.Header.Set("Content-Digest", mustDigest(t, DigestSHA256, "body")+", "+mustDigest(t, DigestSHA512, "body")+", md5=:XUFAKrxLKna5cZ2REBfFkg==:")
	craft(t, req, "sig1", fmt.Sprintf(`("@method" "@target-uri" "content-digest");created=%d;nonce="both";keyid="client"`, time.Now().Unix()), testKey)
	expectCode(t, "sha-256 and sha-512 both right, md5 ignored", g.send(t, req), 200, "")
}

func TestVerifyBodyLimit(t *testing.T) {
	g := newTestGate(t, Config{MaxBodyBytes: 1024})
	expectCode(t, "1024-byte body", g.send(t, g.signed(t, "POST", "/", strings.Repeat("a", 1024))), 200, "")
	expectCode(t, "1025-byte body", g.send(t, g.signed(t, "POST", "/", strings.Repeat("a", 1025))), 413, CodeBodyTooLarge)
	req := g.signed(t, "POST", "/", strings.Repeat("a", 4096))
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	expectCode(t, "4 KiB chunked body", g.send(t, req), 413, CodeBodyTooLarge)
}

func TestVerifyKeysAndAlg(t *testing.T) {
	g := newTestGate(t, Config{Keys: map[string][]byte{"old": testKey, "new": otherKey}})
	for id, key := range map[string][]byte{"old": testKey, "new": otherKey} {
		req := g.request(t, "GET", "/", "")
		Sign(req, id, key)
		expectCode(t, "rotation key "+id, g.send(t, req), 200, "")
	}
	req := g.request(t, "GET", "/", "")
	Sign(req, "retired", testKey)
	expectCode(t, "unknown keyid", g.send(t, req), 401, CodeUnknownKey)

	req = g.request(t, "GET", "/", "")
	Sign(req, "new", testKey) // right keyid, wrong secret
	expectCode(t, "wrong secret", g.send(t, req), 401, CodeBadSignature)

	for _, alg := range []string{"hmac-sha512", "ed25519", "rsa-pss-sha512", "HMAC-SHA256"} {
		req := g.request(t, "GET", "/", "")
		craft(t, req, "sig1", fmt.Sprintf(`("@method" "@target-uri");created=%d;nonce="%s";keyid="old";alg="%s"`, time.Now().Unix(), alg, alg), testKey)
		expectCode(t, "alg "+alg, g.send(t, req), 401, CodeBadAlg)
	}
	req = g.request(t, "GET", "/", "")
	craft(t, req, "sig1", fmt.Sprintf(`("@method" "@target-uri");created=%d;nonce="noalg";keyid="old"`, time.Now().Unix()), testKey)
	expectCode(t, "no alg parameter", g.send(t, req), 200, "")
	req = g.request(t, "GET", "/", "")
	craft(t, req, "sig1", fmt.Sprintf(`("@method" "@target-uri");created=%d;nonce="nokeyid"`, time.Now().Unix()), testKey)
	expectCode(t, "no keyid", g.send(t, req), 401, CodeUnknownKey)
}

func TestVerifyCoverage(t *testing.T) {
	g := newTestGate(t, Config{})
	now := time.Now().Unix()
	for i, tc := range []struct {
		components, code string
	}{
		{`("@method")`, CodeCoverage},
		{`("@target-uri")`, CodeCoverage},
		{`("@method" "@authority" "@path")`, CodeCoverage},
		{`("@method" "@path" "@query")`, CodeCoverage},
		{`("@method" "@authority" "@path" "@query")`, ""},
		{`("@target-uri" "@method" "@scheme" "@request-target")`, ""},
	} {
		req := g.request(t, "GET", "/p?q=1", "")
		craft(t, req, "sig1", fmt.Sprintf(`%s;created=%d;nonce="c%d";keyid="client"`, tc.components, now, i), testKey)
		status := 200
		if tc.code != "" {
			status = 401
		}
		expectCode(t, "covering "+tc.components, g.send(t, req), status, tc.code)
	}
}

func TestVerifyLabels(t *testing.T) {
	g := newTestGate(t, Config{})
	req := g.request(t, "GET", "/", "")
	Sign(req, "client", testKey)
	Sign(req, "client", testKey, WithLabel("sig2"))
	expectCode(t, "two signatures, no label configured", g.send(t, req), 401, CodeSignatureAmbiguous)

	req = g.signed(t, "GET", "/", "")
	req.Header.Add("Signature-Input", req.Header.Get("Signature-Input"))
	expectCode(t, "duplicate label in Signature-Input (two lines)", g.send(t, req), 401, CodeSignatureAmbiguous)

	req = g.signed(t, "GET", "/", "")
	req.Header.Set("Signature", req.Header.Get("Signature")+", "+req.Header.Get("Signature"))
	expectCode(t, "duplicate label in Signature", g.send(t, req), 401, CodeSignatureAmbiguous)

	if err := Sign(req, "client", testKey); err == nil {
		t.Error("Sign added a second signature under an existing label")
	}

	gl := newTestGate(t, Config{Label: "gate"})
	req = gl.request(t, "GET", "/", "")
	Sign(req, "client", otherKey, WithLabel("proxy")) // someone else's signature, ignored
	Sign(req, "client", testKey, WithLabel("gate"))
	expectCode(t, "configured label among several", gl.send(t, req), 200, "")
	req = gl.signed(t, "GET", "/", "")
	expectCode(t, "configured label absent", gl.send(t, req), 401, CodeSignatureMissing)
}

func TestVerifyMalformed(t *testing.T) {
	g := newTestGate(t, Config{})
	now := time.Now().Unix()
	for _, tc := range []struct {
		name, input, signature, code, msg string
	}{
		{"no headers", "", "", CodeSignatureMissing, "no Signature-Input"},
		{"unclosed inner list", `sig1=("@method" "@target-uri"`, `sig1=:AAAA:`, CodeSignatureMalformed, "at byte 29"},
		{"trailing comma", `sig1=("@method"), `, `sig1=:AAAA:`, CodeSignatureMalformed, "trailing comma"},
		{"signature not bytes", `sig1=("@method");keyid="client"`, `sig1="AAAA"`, CodeSignatureMalformed, "byte sequence"},
		{"signature bad base64", `sig1=("@method");keyid="client"`, `sig1=:A$A:`, CodeSignatureMalformed, "at byte 7"},
		{"signature an inner list", `sig1=("@method");keyid="client"`, `sig1=("x")`, CodeSignatureMalformed, "byte sequence"},
		{"signature with parameters", `sig1=("@method");keyid="client"`, `sig1=:AAAA:;p`, CodeSignatureMalformed, "byte sequence"},
		{"input not inner list", `sig1="@method"`, `sig1=:AAAA:`, CodeSignatureMalformed, "inner list"},
		{"uppercase component", `sig1=("@method" "Content-Type")`, `sig1=:AAAA:`, CodeSignatureMalformed, "lowercase"},
		{"component params", `sig1=("@method" "x-a";sf)`, `sig1=:AAAA:`, CodeSignatureMalformed, ";sf"},
		{"token component", `sig1=(@method)`, `sig1=:AAAA:`, CodeSignatureMalformed, "expected an item"},
		{"component twice", `sig1=("@method" "@method")`, `sig1=:AAAA:`, CodeSignatureMalformed, "twice"},
		{"unknown parameter", `sig1=("@method");keyid="client";foo=1`, `sig1=:AAAA:`, CodeSignatureMalformed, `unknown signature parameter "foo"`},
		{"created a string", `sig1=("@method");created="1"`, `sig1=:AAAA:`, CodeSignatureMalformed, "integer"},
		{"duplicate parameter", fmt.Sprintf(`sig1=("@method");created=%d;created=1`, now), `sig1=:AAAA:`, CodeSignatureMalformed, "appears more than once"},
		{"only Signature-Input", `sig1=("@method")`, "", CodeSignatureMissing, "Signature has no signature"},
		{"labels differ", `sig1=("@method")`, `sig2=:AAAA:`, CodeSignatureMissing, "Signature has no signature"},
		{"derived component unsupported", `sig1=("@query-param");keyid="client"`, `sig1=:AAAA:`, CodeSignatureMalformed, "not supported"},
		{"covered header absent", `sig1=("@method" "x-absent");keyid="client"`, `sig1=:AAAA:`, CodeSignatureMalformed, "not in the request"},
		{"signature-params covered", `sig1=("@signature-params")`, `sig1=:AAAA:`, CodeSignatureMalformed, "cannot be a covered"},
		{"RFC 9651 date", `sig1=("@method");created=@1618884473`, `sig1=:AAAA:`, CodeSignatureMalformed, "at byte"},
	} {
		req := g.request(t, "GET", "/", "")
		if tc.input != "" {
			req.Header.Set("Signature-Input", tc.input)
		}
		if tc.signature != "" {
			req.Header.Set("Signature", tc.signature)
		}
		rep := g.send(t, req)
		expectCode(t, tc.name, rep, 401, tc.code)
		if !strings.Contains(rep.Error, tc.msg) {
			t.Errorf("%s: message %q does not say %q", tc.name, rep.Error, tc.msg)
		}
	}
}

// TestVerifyBehindProxy: a client signs the public URL; the verifier sees
// plain http on another port and must be told the origin.
func TestVerifyBehindProxy(t *testing.T) {
	// Verifiers first: a replay cache refuses signatures created before it.
	told := newTestGate(t, Config{Scheme: "https", Authority: "gateway.example.com:443"})
	untold := newTestGate(t, Config{})
	public, err := http.NewRequest("GET", "https://Gateway.Example.com/v1/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	Sign(public, "client", testKey)
	for _, tc := range []struct {
		g    *testGate
		code string
	}{{told, ""}, {untold, CodeBadSignature}} {
		req := tc.g.request(t, "GET", "/v1/status", "")
		req.Header = public.Header.Clone()
		req.Host = "gateway.example.com" // what the proxy forwards
		status := 200
		if tc.code != "" {
			status = 401
		}
		expectCode(t, "behind proxy (origin configured: "+fmt.Sprint(tc.g == told)+")", tc.g.send(t, req), status, tc.code)
	}
	if _, err := NewVerifier(Config{Keys: map[string][]byte{"k": testKey}, Scheme: "ftp"}); err == nil {
		t.Error("scheme ftp accepted")
	}
	if _, err := NewVerifier(Config{Keys: map[string][]byte{"k": testKey}, Authority: "h/x"}); err == nil {
		t.Error("authority with a path accepted")
	}
}

func TestNewVerifierRefusesWeakConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no keys":        {},
		"short key":      {Keys: map[string][]byte{"k": []byte("short")}},
		"empty keyid":    {Keys: map[string][]byte{"": testKey}},
		"negative age":   {Keys: map[string][]byte{"k": testKey}, MaxAge: -time.Second},
		"negative limit": {Keys: map[string][]byte{"k": testKey}, MaxBodyBytes: -1},
		"bad label":      {Keys: map[string][]byte{"k": testKey}, Label: "Sig"},
	} {
		if _, err := NewVerifier(cfg); err == nil {
			t.Errorf("%s: NewVerifier accepted it", name)
		}
	}
	req, _ := http.NewRequest("GET", "http://x/", nil)
	if err := Sign(req, "k", []byte("short")); err == nil {
		t.Error("Sign accepted a short key")
	}
	if err := Sign(&http.Request{Method: "GET", URL: &url.URL{Path: "/x"}}, "k", testKey); err == nil {
		t.Error("Sign accepted a relative URL")
	}
}

// TestVerifierKeysAreCopied: changing the caller's map or key bytes after
// NewVerifier must not change what the verifier accepts.
func TestVerifierKeysAreCopied(t *testing.T) {
	key := bytes.Clone(testKey)
	keys := map[string][]byte{"client": key}
	g := newTestGate(t, Config{Keys: keys})
	key[0] ^= 1
	keys["evil"] = otherKey
	expectCode(t, "original key still works", g.send(t, g.signed(t, "GET", "/", "")), 200, "")
	req := g.request(t, "GET", "/", "")
	Sign(req, "evil", otherKey)
	expectCode(t, "key added to the caller's map", g.send(t, req), 401, CodeUnknownKey)
}

type originalKey struct{}

// TestVerifyAfterRewrite: middleware before the verifier rewrote the target
// (as Caddy's rewrite does, RequestURI included). With Config.Original the
// signature is checked against the request as sent; without it, it fails.
func TestVerifyAfterRewrite(t *testing.T) {
	for _, withOriginal := range []bool{true, false} {
		cfg := Config{Keys: map[string][]byte{"client": testKey}}
		if withOriginal {
			cfg.Original = func(r *http.Request) *http.Request {
				o, _ := r.Context().Value(originalKey{}).(*http.Request)
				return o
			}
		}
		v, err := NewVerifier(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			orig := *r
			r = r.WithContext(context.WithValue(r.Context(), originalKey{}, &orig))
			r.URL.Path = "/internal" + r.URL.Path // the rewrite
			r.RequestURI = r.URL.RequestURI()
			if _, err := v.Verify(r); err != nil {
				http.Error(w, CodeOf(err), http.StatusUnauthorized)
			}
		}))
		req, _ := http.NewRequest("POST", srv.URL+"/hooks/x?a=1", strings.NewReader("body"))
		Sign(req, "client", testKey)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if withOriginal && resp.StatusCode != 200 || !withOriginal && strings.TrimSpace(string(b)) != CodeBadSignature {
			t.Errorf("Original set %v: %d %s", withOriginal, resp.StatusCode, b)
		}
	}
}

// TestVerifyConcurrentReplay races copies of one signed request: exactly one
// may get through, with a body (looked up before the body is read, then
// recorded) and without (recorded at once).
func TestVerifyConcurrentReplay(t *testing.T) {
	g := newTestGate(t, Config{})
	for _, tc := range []struct{ method, body string }{{"POST", "once"}, {"GET", ""}} {
		req := g.signed(t, tc.method, "/hooks/deploy", tc.body)
		const n = 32
		codes := make(chan string, n)
		var wg sync.WaitGroup
		for range n {
			c := again(t, req)
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := g.srv.Client().Do(c)
				if err != nil {
					codes <- err.Error()
					return
				}
				defer resp.Body.Close()
				var rep gateReply
				json.NewDecoder(resp.Body).Decode(&rep)
				codes <- fmt.Sprint(resp.StatusCode, rep.Code)
			}()
		}
		wg.Wait()
		close(codes)
		count := map[string]int{}
		for c := range codes {
			count[c]++
		}
		if count["200"] != 1 || count["401replay"] != n-1 {
			t.Errorf("%s: outcomes %v, want one 200 and %d replays", tc.method, count, n-1)
		}
	}
}
