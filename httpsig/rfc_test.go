package httpsig

import (
	"bufio"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rfcKeyB15 is the hmac-sha256 key "test-shared-secret" of RFC 9421 B.1.5.
const rfcKeyB15 = "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ=="

// rfcTestRequest is the test-request message of RFC 9421 Appendix B.2.
const rfcTestRequest = "POST /foo?param=Value&Pet=dog HTTP/1.1\r\n" +
	"Host: example.com\r\n" +
	"Date: Tue, 20 Apr 2021 02:07:55 GMT\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Digest: sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\r\n" +
	"Content-Length: 18\r\n" +
	"\r\n" +
	`{"hello": "world"}`

func readRFCRequest(t *testing.T) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(rfcTestRequest)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fixedClock(unix int64) func() time.Time {
	return func() time.Time { return time.Unix(unix, 0) }
}

// TestRFC9421B25 verifies the hmac-sha256 example of RFC 9421 Appendix B.2.5.
// The clock is set to the example's created time; nothing else is relaxed in
// the verifier. The example covers neither @method nor a nonce, so the
// HMAC verifies but the gate's policy refuses it with "coverage".
func TestRFC9421B25(t *testing.T) {
	key, err := base64.StdEncoding.DecodeString(rfcKeyB15)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Config{Keys: map[string][]byte{"test-shared-secret": key}, Now: fixedClock(1618884473)})
	if err != nil {
		t.Fatal(err)
	}
	r := readRFCRequest(t)
	r.Header.Set("Signature-Input", `sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`)
	r.Header.Set("Signature", `sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`)

	label, p, err := v.verifySignature(r)
	if err != nil {
		t.Fatalf("RFC 9421 B.2.5 does not verify: %v", err)
	}
	if label != "sig-b25" || p.keyid != "test-shared-secret" || p.created != 1618884473 {
		t.Errorf("label %q keyid %q created %d", label, p.keyid, p.created)
	}
	base, err := signatureBase(incomingMessage(r, "", ""), p)
	if err != nil {
		t.Fatal(err)
	}
	wantBase := `"date": Tue, 20 Apr 2021 02:07:55 GMT` + "\n" +
		`"@authority": example.com` + "\n" +
		`"content-type": application/json` + "\n" +
		`"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`
	if base != wantBase {
		t.Errorf("signature base:\n%s\nwant:\n%s", base, wantBase)
	}
	if _, err := v.Verify(r); CodeOf(err) != CodeCoverage {
		t.Errorf("Verify of the B.2.5 example (no @method, no nonce) = %v, want code %s", err, CodeCoverage)
	}

	// One changed byte in a covered field, or in the signature, fails.
	r.Header.Set("Content-Type", "application/jsoN")
	if _, _, err := v.verifySignature(r); CodeOf(err) != CodeBadSignature {
		t.Errorf("tampered content-type: %v, want %s", err, CodeBadSignature)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Signature", `sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtF8=:`)
	if _, _, err := v.verifySignature(r); CodeOf(err) != CodeBadSignature {
		t.Errorf("tampered signature: %v, want %s", err, CodeBadSignature)
	}
	// "…E9=" differs from "…E8=" only in base64 pad bits: the same 32 bytes,
	// which RFC 8941 §4.2.7 says parsers should accept.
	r.Header.Set("Signature", `sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE9=:`)
	if _, _, err := v.verifySignature(r); err != nil {
		t.Errorf("same signature bytes with non-zero pad bits: %v", err)
	}
}

// TestRFC9421BaseB26 rebuilds the signature base of Appendix B.2.6 (an
// ed25519 example: only the base is compared).
func TestRFC9421BaseB26(t *testing.T) {
	r := readRFCRequest(t)
	p := mustParams(t, `("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`)
	base, err := signatureBase(incomingMessage(r, "https", ""), p)
	if err != nil {
		t.Fatal(err)
	}
	want := `"date": Tue, 20 Apr 2021 02:07:55 GMT` + "\n" +
		`"@method": POST` + "\n" +
		`"@path": /foo` + "\n" +
		`"@authority": example.com` + "\n" +
		`"content-type": application/json` + "\n" +
		`"content-length": 18` + "\n" +
		`"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`
	if base != want {
		t.Errorf("signature base:\n%s\nwant:\n%s", base, want)
	}
}

// TestRFC9530Digests checks ContentDigest against the digests RFC 9421's test
// request carries (sha-512) and RFC 9530's examples use (sha-256).
func TestRFC9530Digests(t *testing.T) {
	for alg, want := range map[string]string{
		DigestSHA256: `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`,
		DigestSHA512: `sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:`,
	} {
		got, err := ContentDigest(alg, strings.NewReader(`{"hello": "world"}`))
		if err != nil || got != want {
			t.Errorf("ContentDigest(%s) = %q, %v; want %q", alg, got, err, want)
		}
	}
	if _, err := ContentDigest("md5", strings.NewReader("")); err == nil {
		t.Error("ContentDigest accepted md5")
	}
}

// TestDerivedComponents follows RFC 9421 §2.2's examples, plus the corner
// cases the gate depends on: default ports, host case, empty query, a
// verifier told its public origin, absolute-form targets.
func TestDerivedComponents(t *testing.T) {
	m := &message{method: "POST", scheme: "https", authority: "www.example.com", target: "/path?param=value"}
	for name, want := range map[string]string{
		"@method":         "POST",
		"@target-uri":     "https://www.example.com/path?param=value",
		"@authority":      "www.example.com",
		"@scheme":         "https",
		"@request-target": "/path?param=value",
		"@path":           "/path",
		"@query":          "?param=value",
	} {
		if got, err := component(m, name); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, tc := range []struct {
		target, query, path string
	}{
		{"/path", "?", "/path"},
		{"/path?", "?", "/path"},
		{"/path?param=value&foo=bar&baz=bat%2Dman", "?param=value&foo=bar&baz=bat%2Dman", "/path"},
		{"/a%20b/c?", "?", "/a%20b/c"},
		{"?x=1", "?x=1", "/"},
	} {
		m := &message{target: tc.target}
		q, _ := component(m, "@query")
		p, _ := component(m, "@path")
		if q != tc.query || p != tc.path {
			t.Errorf("target %q: @query %q @path %q, want %q %q", tc.target, q, p, tc.query, tc.path)
		}
	}
	for _, tc := range []struct{ scheme, host, want string }{
		{"https", "Example.COM:443", "example.com"},
		{"http", "example.com:80", "example.com"},
		{"http", "example.com:443", "example.com:443"},
		{"https", "example.com:8443", "example.com:8443"},
		{"https", "[::1]:443", "[::1]"},
		{"http", "[::1]:8080", "[::1]:8080"},
		{"http", "127.0.0.1", "127.0.0.1"},
	} {
		if got := normalizeAuthority(tc.scheme, tc.host); got != tc.want {
			t.Errorf("normalizeAuthority(%s, %s) = %s, want %s", tc.scheme, tc.host, got, tc.want)
		}
	}
	if _, err := component(m, "@query-param"); err == nil {
		t.Error("@query-param is not supported and must be refused")
	}
	if _, err := component(m, "@status"); err == nil {
		t.Error("@status is a response component and must be refused")
	}

	r, _ := http.ReadRequest(bufio.NewReader(strings.NewReader("GET http://Proxy.Example:80/p?q=1 HTTP/1.1\r\nHost: proxy.example\r\n\r\n")))
	in := incomingMessage(r, "https", "Public.Example:443")
	if got, _ := component(&in, "@target-uri"); got != "https://public.example/p?q=1" {
		t.Errorf("absolute-form target behind a proxy: @target-uri %q", got)
	}
	r.TLS = nil
	if got := incomingMessage(r, "", "").scheme; got != "http" {
		t.Errorf("scheme without TLS = %q", got)
	}
}

// TestFieldValues follows RFC 9421 §2.1: trimmed values, several lines joined
// with ", ", obsolete folding replaced by a space, an empty value kept, and
// line breaks that could forge base lines refused.
func TestFieldValues(t *testing.T) {
	raw := "GET / HTTP/1.1\r\nHost: example.com\r\n" +
		"X-OWS-Header:   Leading and trailing whitespace.   \r\n" +
		"X-Obs-Fold-Header: Obsolete\r\n    line folding.\r\n" +
		"Cache-Control: max-age=60\r\nCache-Control:    must-revalidate\r\n" +
		"Example-Dict:  a=1,    b=2;x=1;y=2,   c=(a   b   c)  \r\n" +
		"X-Empty-Header: \r\n\r\n"
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	m := new(message)
	*m = incomingMessage(r, "", "")
	for name, want := range map[string]string{
		"host":              "example.com",
		"x-ows-header":      "Leading and trailing whitespace.",
		"x-obs-fold-header": "Obsolete line folding.",
		"cache-control":     "max-age=60, must-revalidate",
		"example-dict":      "a=1,    b=2;x=1;y=2,   c=(a   b   c)",
		"x-empty-header":    "",
	} {
		if got, err := component(m, name); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := component(m, "x-absent"); err == nil {
		t.Error("an absent field must be an error")
	}
	// Requests built in-process skip Go's header parsing.
	m.header = http.Header{
		"X-Fold":   {"a\r\n\tb"},
		"X-Inject": {"v\n\"@method\": GET"},
		"X-Nul":    {"a\x00b"},
	}
	if got, err := component(m, "x-fold"); err != nil || got != "a b" {
		t.Errorf("in-process obs-fold = %q, %v", got, err)
	}
	for _, h := range []string{"x-inject", "x-nul"} {
		if got, err := component(m, h); err == nil {
			t.Errorf("%s = %q, want an error", h, got)
		}
	}
}

// component and signatureBase are appendComponent and appendSignatureBase
// as strings, to compare with the RFC's text.
func component(m *message, name string) (string, error) {
	b, err := m.appendComponent(nil, name)
	return string(b), err
}

func signatureBase(m message, p *sigParams) (string, error) {
	b, err := appendSignatureBase(nil, &m, p)
	return string(b), err
}

func mustParams(t *testing.T, innerList string) *sigParams {
	t.Helper()
	_, p, _, err := selectSignature("l="+innerList, "l=::", "l")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
