package caddymodule

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
)

const (
	hmacKey    = "hmac-test-key-0123456789abcdef-ABCDEF"
	hmacKeyNew = "hmac-rotated-key-0123456789abcdef-XYZ"
)

// echoUpstream is a real HTTP server standing in for the gateway: it answers
// with the headers and the body it received, as JSON.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoed{Header: r.Header, Body: string(body), Path: r.URL.RequestURI()})
	}))
	t.Cleanup(srv.Close)
	return srv
}

type echoed struct {
	Header http.Header `json:"header"`
	Body   string      `json:"body"`
	Path   string      `json:"path"`
}

type hmacEnv struct {
	base  string // http://127.0.0.1:port
	admin int
	cfg   string
}

// hmacGateConfig is a site with the gate (hmac key "ci" plus opts) in front
// of up; site is inserted before the gate (e.g. a rewrite).
func hmacGateConfig(t *testing.T, up *httptest.Server, stateDir, opts, site string) (string, *hmacEnv) {
	port, admin := testcaddy.FreePort(t), testcaddy.FreePort(t)
	if site != "" {
		site = "\t" + site + "\n"
	}
	if opts != "" {
		opts = "\t\t" + opts + "\n"
	}
	cfg := testcaddy.Global(admin) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
%s	clawguard {
		hmac ci %s
		state_dir %s
%s	}
	reverse_proxy %s
}
`, port, site, hmacKey, stateDir, opts, strings.TrimPrefix(up.URL, "http://"))
	return cfg, &hmacEnv{base: fmt.Sprintf("http://127.0.0.1:%d", port), admin: admin, cfg: cfg}
}

func startHMACGate(t *testing.T, opts string) *hmacEnv {
	t.Helper()
	cfg, e := hmacGateConfig(t, echoUpstream(t), t.TempDir(), opts, "")
	testcaddy.Load(t, cfg)
	return e
}

// request builds a request to the gate; a non-empty body makes it a POST
// with GetBody set, as http.NewRequest does for in-memory bodies.
func (e *hmacEnv) request(t *testing.T, method, path, body string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func sign(t *testing.T, req *http.Request, keyid, key string, opts ...httpsig.SignOption) *http.Request {
	t.Helper()
	if err := httpsig.Sign(req, keyid, []byte(key), opts...); err != nil {
		t.Fatal(err)
	}
	return req
}

type hmacReply struct {
	status int
	header http.Header
	code   string // refusal code
	seen   echoed // what the upstream received (200 only)
	raw    string
}

// send sends req (again, with a fresh body, when sent before) from the
// loopback address from.
func send(t *testing.T, from string, req *http.Request) hmacReply {
	t.Helper()
	out := req.Clone(context.Background())
	if req.GetBody != nil {
		out.Body, _ = req.GetBody()
	}
	resp, err := testcaddy.Client(from).Do(out)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := hmacReply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &r.seen); err != nil {
			t.Fatalf("upstream reply %q: %v", b, err)
		}
		return r
	}
	var body wire.ErrorBody
	if err := json.Unmarshal(b, &body); err != nil || body.Code == "" || body.Error == "" {
		t.Fatalf("refusal body %q is not {error, code}", b)
	}
	r.code = body.Code
	return r
}

// wantAdmitted checks that the upstream got the request as hmac:<keyid>,
// without the consumed signature, with body intact.
func wantAdmitted(t *testing.T, r hmacReply, keyid, body string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.raw)
	}
	h := r.seen.Header
	if got := h.Get("X-Clawguard-Identity"); got != "hmac:"+keyid {
		t.Fatalf("upstream saw identity %q, want hmac:%s", got, keyid)
	}
	if h.Get("X-Clawguard-Method") != "hmac" {
		t.Fatalf("upstream saw method %q", h.Get("X-Clawguard-Method"))
	}
	if h.Get("Signature") != "" || h.Get("Signature-Input") != "" {
		t.Fatal("the consumed signature reached the upstream")
	}
	if r.seen.Body != body {
		t.Fatalf("upstream got body %q, want %q", r.seen.Body, body)
	}
}

func TestHMACSignedRequestsAccepted(t *testing.T) {
	e := startHMACGate(t, "")
	// From a non-loopback-looking client, so local trust cannot be what
	// lets it in.
	get := e.request(t, "GET", "/api/status?verbose=1&x=%2F", "")
	get.Header.Set("X-Forwarded-For", "203.0.113.5")
	wantAdmitted(t, send(t, "", sign(t, get, "ci", hmacKey)), "ci", "")

	body := `{"event":"deploy","ref":"main"}`
	post := e.request(t, "POST", "/hooks/deploy", body)
	post.Header.Set("Content-Type", "application/json")
	wantAdmitted(t, send(t, "", sign(t, post, "ci", hmacKey, httpsig.WithHeaders("Content-Type"))), "ci", body)

	// sha-512 Content-Digest, a chunked body, and an empty POST.
	post = e.request(t, "POST", "/hooks/deploy", body)
	wantAdmitted(t, send(t, "", sign(t, post, "ci", hmacKey, httpsig.WithDigest(httpsig.DigestSHA512))), "ci", body)
	chunked := e.request(t, "PUT", "/blob", "")
	chunked.Body = io.NopCloser(strings.NewReader(body))
	chunked.ContentLength = -1
	sign(t, chunked, "ci", hmacKey)
	chunked.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	chunked.ContentLength = -1
	wantAdmitted(t, send(t, "", chunked), "ci", body)
	wantAdmitted(t, send(t, "", sign(t, e.request(t, "POST", "/empty", ""), "ci", hmacKey)), "ci", "")
}

// manualSign signs with an independent implementation of RFC 9421's
// signature base, so tests can build signatures httpsig.Sign never would
// (no nonce, missing components) and check that a second implementation
// agrees with the gate. params is the text after the inner list.
func manualSign(t *testing.T, req *http.Request, key, label string, components []string, params string) {
	t.Helper()
	var base strings.Builder
	quoted := make([]string, len(components))
	for i, c := range components {
		quoted[i] = `"` + c + `"`
		var v string
		switch c {
		case "@method":
			v = req.Method
		case "@target-uri":
			v = req.URL.String()
		case "@authority":
			v = req.URL.Host
		case "@path":
			v = req.URL.EscapedPath()
		case "@query":
			v = "?" + req.URL.RawQuery
		default:
			v = req.Header.Get(c)
		}
		fmt.Fprintf(&base, "%q: %s\n", c, v)
	}
	sigParams := "(" + strings.Join(quoted, " ") + ")" + params
	fmt.Fprintf(&base, "\"@signature-params\": %s", sigParams)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(base.String()))
	req.Header.Set("Signature-Input", label+"="+sigParams)
	req.Header.Set("Signature", label+"=:"+base64.StdEncoding.EncodeToString(mac.Sum(nil))+":")
}

func TestHMACIndependentSignerAgrees(t *testing.T) {
	e := startHMACGate(t, "")
	now := time.Now().Unix()
	req := e.request(t, "GET", "/a/b?c=d", "")
	manualSign(t, req, hmacKey, "mine", []string{"@method", "@authority", "@path", "@query"},
		fmt.Sprintf(`;created=%d;nonce="n-%d";keyid="ci"`, now, now))
	wantAdmitted(t, send(t, "", req), "ci", "")
}

func TestHMACRefusals(t *testing.T) {
	e := startHMACGate(t, "rate_limit off")
	now := time.Now()
	body := `{"amount":100}`
	cases := []struct {
		name string
		req  func() *http.Request
		code string
	}{
		{"stale created", func() *http.Request {
			return sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey, httpsig.WithCreated(now.Add(-6*time.Minute)))
		}, httpsig.CodeExpired},
		{"future created", func() *http.Request {
			return sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey, httpsig.WithCreated(now.Add(30*time.Second)))
		}, httpsig.CodeFuture},
		{"tampered body", func() *http.Request {
			r := sign(t, e.request(t, "POST", "/pay", body), "ci", hmacKey)
			tampered := strings.Replace(body, "100", "999", 1)
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(tampered)), nil }
			return r
		}, httpsig.CodeDigestMismatch},
		{"tampered Content-Digest and body", func() *http.Request {
			r := sign(t, e.request(t, "POST", "/pay", body), "ci", hmacKey)
			tampered := strings.Replace(body, "100", "999", 1)
			d, _ := httpsig.ContentDigest(httpsig.DigestSHA256, strings.NewReader(tampered))
			r.Header.Set("Content-Digest", d)
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(tampered)), nil }
			return r
		}, httpsig.CodeBadSignature},
		{"tampered path", func() *http.Request {
			r := sign(t, e.request(t, "GET", "/read", ""), "ci", hmacKey)
			r.URL.Path = "/admin"
			return r
		}, httpsig.CodeBadSignature},
		{"tampered query", func() *http.Request {
			r := sign(t, e.request(t, "GET", "/read?id=1", ""), "ci", hmacKey)
			r.URL.RawQuery = "id=2"
			return r
		}, httpsig.CodeBadSignature},
		{"tampered method", func() *http.Request {
			r := sign(t, e.request(t, "GET", "/item", ""), "ci", hmacKey)
			r.Method = "DELETE"
			return r
		}, httpsig.CodeBadSignature},
		{"signed for another host", func() *http.Request {
			r := e.request(t, "GET", "/", "")
			r.Host = "gw.example.com"
			sign(t, r, "ci", hmacKey)
			r.Host = ""
			return r
		}, httpsig.CodeBadSignature},
		{"missing content-digest on a body", func() *http.Request {
			r := sign(t, e.request(t, "POST", "/pay", ""), "ci", hmacKey)
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
			r.ContentLength = int64(len(body))
			return r
		}, httpsig.CodeDigestMissing},
		{"missing content-digest on a chunked body", func() *http.Request {
			r := sign(t, e.request(t, "POST", "/pay", ""), "ci", hmacKey)
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
			r.ContentLength = -1
			return r
		}, httpsig.CodeDigestMissing},
		{"unknown keyid", func() *http.Request {
			return sign(t, e.request(t, "GET", "/", ""), "mallory", hmacKey)
		}, httpsig.CodeUnknownKey},
		{"right keyid, wrong key", func() *http.Request {
			return sign(t, e.request(t, "GET", "/", ""), "ci", hmacKeyNew)
		}, httpsig.CodeBadSignature},
		{"wrong alg", func() *http.Request {
			r := sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `alg="hmac-sha256"`, `alg="rsa-v1_5-sha256"`, 1))
			return r
		}, httpsig.CodeBadAlg},
		{"duplicate labels", func() *http.Request {
			r := sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)
			in := r.Header.Get("Signature-Input")
			r.Header.Set("Signature-Input", in+", "+in)
			return r
		}, httpsig.CodeSignatureAmbiguous},
		{"two signatures", func() *http.Request {
			r := sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)
			return sign(t, r, "ci", hmacKey, httpsig.WithLabel("sig2"))
		}, httpsig.CodeSignatureAmbiguous},
		{"malformed Signature-Input", func() *http.Request {
			r := sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)
			r.Header.Set("Signature-Input", `sig1=("@method" "@target-uri";created=1`)
			return r
		}, httpsig.CodeSignatureMalformed},
		{"malformed Signature", func() *http.Request {
			r := sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)
			r.Header.Set("Signature", `sig1=:not base64!:`)
			return r
		}, httpsig.CodeSignatureMalformed},
		{"Signature without Signature-Input", func() *http.Request {
			r := sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)
			r.Header.Del("Signature-Input")
			return r
		}, httpsig.CodeSignatureMissing},
		{"no nonce", func() *http.Request {
			r := e.request(t, "GET", "/", "")
			manualSign(t, r, hmacKey, "sig1", []string{"@method", "@target-uri"}, fmt.Sprintf(`;created=%d;keyid="ci"`, now.Unix()))
			return r
		}, httpsig.CodeNonceMissing},
		{"no created", func() *http.Request {
			r := e.request(t, "GET", "/", "")
			manualSign(t, r, hmacKey, "sig1", []string{"@method", "@target-uri"}, `;nonce="abc";keyid="ci"`)
			return r
		}, httpsig.CodeCreatedMissing},
		{"@method not covered", func() *http.Request {
			r := e.request(t, "GET", "/", "")
			manualSign(t, r, hmacKey, "sig1", []string{"@target-uri"}, fmt.Sprintf(`;created=%d;nonce="abc";keyid="ci"`, now.Unix()))
			return r
		}, httpsig.CodeCoverage},
		{"only @path covered, not the query", func() *http.Request {
			r := e.request(t, "GET", "/x?admin=1", "")
			manualSign(t, r, hmacKey, "sig1", []string{"@method", "@authority", "@path"}, fmt.Sprintf(`;created=%d;nonce="abc";keyid="ci"`, now.Unix()))
			return r
		}, httpsig.CodeCoverage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := send(t, "", c.req())
			if r.status != http.StatusUnauthorized || r.code != c.code {
				t.Fatalf("status %d code %q, want 401 %q (%s)", r.status, r.code, c.code, r.raw)
			}
			if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, "Signature") {
				t.Fatalf("WWW-Authenticate %q does not name Signature", ch)
			}
		})
	}

	t.Run("replayed nonce", func(t *testing.T) {
		for _, req := range []*http.Request{
			sign(t, e.request(t, "GET", "/once", ""), "ci", hmacKey),
			sign(t, e.request(t, "POST", "/once", body), "ci", hmacKey),
		} {
			wantAdmitted(t, send(t, "", req), "ci", map[string]string{"GET": "", "POST": body}[req.Method])
			if r := send(t, "", req); r.status != 401 || r.code != httpsig.CodeReplay {
				t.Fatalf("replay: status %d code %q", r.status, r.code)
			}
		}
	})
}

// TestHMACVectorB25AtTheGate sends RFC 9421's B.2.5 example request, signed
// with B.1.5's key, through the gate. Its HMAC is right (the changed
// signature below shows the gate checks it), but the gate's rules refuse it
// with "coverage": the example covers neither @method nor the target and
// carries no nonce, so anyone who saw it could replay it to any path with
// any method. That is the point of the gate's required coverage.
func TestHMACVectorB25AtTheGate(t *testing.T) {
	up := echoUpstream(t)
	cfg, e := hmacGateConfig(t, up, t.TempDir(), "hmac test-shared-secret base64:uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==\n\t\trate_limit off", "")
	testcaddy.Load(t, cfg)
	vector := func(sig string) *http.Request {
		req := e.request(t, "POST", "/foo?param=Value&Pet=dog", `{"hello": "world"}`)
		req.Host = "example.com"
		req.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Digest", "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:")
		req.Header.Set("Signature-Input", `sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`)
		req.Header.Set("Signature", "sig-b25=:"+sig+":")
		return req
	}
	if r := send(t, "", vector("pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=")); r.status != 401 || r.code != httpsig.CodeCoverage {
		t.Fatalf("B.2.5: status %d code %q, want 401 coverage", r.status, r.code)
	}
	if r := send(t, "", vector("pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtF8=")); r.status != 401 || r.code != httpsig.CodeBadSignature {
		t.Fatalf("B.2.5 with one bit changed: status %d code %q, want 401 bad_signature", r.status, r.code)
	}
}

func TestHMACBodyLimit(t *testing.T) {
	e := startHMACGate(t, "hmac ci2 "+hmacKeyNew+" {\n\t\t\tmax_body 1KiB\n\t\t}")
	small := strings.Repeat("a", 1024)
	wantAdmitted(t, send(t, "", sign(t, e.request(t, "POST", "/up", small), "ci", hmacKey)), "ci", small)
	big := strings.Repeat("b", 1025)
	// Declared length over the limit, and the same body chunked (length
	// unknown until read): 413 both ways, and neither is a credential
	// failure, so eleven of them do not lock the client out.
	for i := 0; i < 11; i++ {
		req := sign(t, e.request(t, "POST", "/up", big), "ci", hmacKey)
		if i%2 == 1 {
			req.ContentLength = -1
		}
		if r := send(t, "127.0.0.20", req); r.status != http.StatusRequestEntityTooLarge || r.code != httpsig.CodeBodyTooLarge {
			t.Fatalf("request %d over max_body: status %d code %q", i, r.status, r.code)
		}
	}
	wantAdmitted(t, send(t, "127.0.0.20", sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)), "ci", "")
}

// TestHMACFailuresCountTowardTheRateLimit: bad signatures lock their client
// out of the guessable credentials (a token here); a good signature, which
// no one can guess, is still checked and admitted.
func TestHMACFailuresCountTowardTheRateLimit(t *testing.T) {
	e := startHMACGate(t, "token "+testToken)
	for i := 1; i <= 10; i++ {
		if r := send(t, "127.0.0.21", sign(t, e.request(t, "GET", "/", ""), "ci", hmacKeyNew)); r.status != 401 {
			t.Fatalf("attempt %d: %d", i, r.status)
		}
	}
	tok := e.request(t, "GET", "/", "")
	tok.Header.Set("Authorization", "Bearer "+testToken)
	if r := send(t, "127.0.0.21", tok); r.status != http.StatusTooManyRequests {
		t.Fatalf("after 10 bad signatures, a token: %d, want 429", r.status)
	}
	wantAdmitted(t, send(t, "127.0.0.21", sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)), "ci", "")
	if r := send(t, "127.0.0.21", sign(t, e.request(t, "GET", "/", ""), "ci", hmacKeyNew)); r.status != 401 {
		t.Fatalf("a bad signature during the lockout: %d, want 401", r.status)
	}
	wantAdmitted(t, send(t, "127.0.0.22", sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)), "ci", "")
}

func TestHMACKeyRotationAndSecrets(t *testing.T) {
	stateDir := t.TempDir()
	t.Setenv(vault.PassphraseEnv, "test passphrase for the gate")
	v, err := vault.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set("hmac_ci_new", []byte(hmacKeyNew+"\n")); err != nil {
		t.Fatal(err)
	}
	envKey := "base64:" + base64.StdEncoding.EncodeToString([]byte("a binary key of thirty-two bytes!!"))
	t.Setenv("CLAWGUARD_TEST_HMAC", envKey)
	cfg, e := hmacGateConfig(t, echoUpstream(t), stateDir, "hmac ci-new {vault.hmac_ci_new}\n\t\thmac hook {env.CLAWGUARD_TEST_HMAC}", "")
	testcaddy.Load(t, cfg)
	wantAdmitted(t, send(t, "", sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)), "ci", "")
	wantAdmitted(t, send(t, "", sign(t, e.request(t, "GET", "/", ""), "ci-new", hmacKeyNew)), "ci-new", "")
	wantAdmitted(t, send(t, "", sign(t, e.request(t, "GET", "/", ""), "hook", "a binary key of thirty-two bytes!!")), "hook", "")
	// Each key only under its own keyid.
	if r := send(t, "", sign(t, e.request(t, "GET", "/", ""), "ci-new", hmacKey)); r.code != httpsig.CodeBadSignature {
		t.Fatalf("old key under the new keyid: %d %q", r.status, r.code)
	}
}

func TestHMACShortOrMissingKeysFailLoad(t *testing.T) {
	t.Setenv("CLAWGUARD_TEST_SHORT_HMAC", "only-twenty-bytes!!!")
	t.Setenv(vault.PassphraseEnv, "test passphrase for the gate")
	for name, c := range map[string]struct{ secret, want string }{
		"short env key":       {"{env.CLAWGUARD_TEST_SHORT_HMAC}", "hmac ci: key: 20 bytes; at least 32"},
		"unset env key":       {"{env.CLAWGUARD_TEST_UNSET_HMAC}", "hmac ci:"},
		"missing vault entry": {"{vault.nope}", "hmac ci: {vault.nope}"},
		"bad base64":          {"{env.CLAWGUARD_TEST_BAD_B64}", "invalid base64"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("CLAWGUARD_TEST_BAD_B64", "base64:!!!!")
			cfg := testcaddy.Global(testcaddy.FreePort(t)) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		hmac ci %s
		state_dir %s
	}
	respond ok
}
`, testcaddy.FreePort(t), c.secret, t.TempDir())
			err := testcaddy.LoadErr(cfg)
			if err == nil {
				t.Fatal("config loaded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// TestHMACReloadKeepsReplayProtection: after `caddy reload` a nonce used
// before it is still refused, and a request signed before it is still
// accepted (a fresh replay cache would refuse it as older than its horizon).
func TestHMACReloadKeepsReplayProtection(t *testing.T) {
	stateDir := t.TempDir()
	up := echoUpstream(t)
	cfg, e := hmacGateConfig(t, up, stateDir, "", "")
	testcaddy.Load(t, cfg)
	used := sign(t, e.request(t, "GET", "/before", ""), "ci", hmacKey)
	wantAdmitted(t, send(t, "", used), "ci", "")
	early := sign(t, e.request(t, "GET", "/early", ""), "ci", hmacKey)
	// Reload in a later second than both signatures were created in, so a
	// fresh cache (horizon: its start, in seconds) would refuse both as
	// expired; the shared one must answer replay and accept.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))

	// A real reload: a changed config (a second key) replaces the running one.
	if err := testcaddy.LoadErr(strings.Replace(cfg, "state_dir", "hmac ci-new "+hmacKeyNew+"\n\t\tstate_dir", 1)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	wantAdmitted(t, send(t, "", sign(t, e.request(t, "GET", "/", ""), "ci-new", hmacKeyNew)), "ci-new", "") // the new config is live
	if r := send(t, "", used); r.status != 401 || r.code != httpsig.CodeReplay {
		t.Fatalf("nonce used before the reload: status %d code %q, want replay", r.status, r.code)
	}
	wantAdmitted(t, send(t, "", early), "ci", "")
}

// TestHMACVerifiesTheRequestAsSent: a rewrite that runs before the gate does
// not break the client's signature, which covers the URL it sent.
func TestHMACVerifiesTheRequestAsSent(t *testing.T) {
	cfg, e := hmacGateConfig(t, echoUpstream(t), t.TempDir(), "", "rewrite /old/* /new{uri}")
	testcaddy.Load(t, cfg)
	r := send(t, "", sign(t, e.request(t, "GET", "/old/x?y=1", ""), "ci", hmacKey))
	wantAdmitted(t, r, "ci", "")
	if r.seen.Path != "/new/old/x?y=1" {
		t.Fatalf("upstream path %q: the rewrite did not run", r.seen.Path)
	}
}

// TestHMACOrigin: behind a TLS-terminating proxy clients sign the public
// origin; with `origin` the gate checks against it, not what it sees.
func TestHMACOrigin(t *testing.T) {
	e := startHMACGate(t, "hmac ci2 "+hmacKeyNew+" {\n\t\t\torigin https://gw.example.com\n\t\t}\n\t\trate_limit off")
	public := func() *http.Request {
		req, _ := http.NewRequest("GET", "https://gw.example.com/x?y=1", nil)
		sign(t, req, "ci", hmacKey)
		local := e.request(t, "GET", "/x?y=1", "")
		local.Header = req.Header
		return local
	}
	r := public()
	wantAdmitted(t, send(t, "", r), "ci", "")
	// What the gate sees directly is no longer what it accepts.
	if r := send(t, "", sign(t, e.request(t, "GET", "/x?y=1", ""), "ci", hmacKey)); r.code != httpsig.CodeBadSignature {
		t.Fatalf("signed for the gate's own address: %d %q", r.status, r.code)
	}
}

func TestHMACMetrics(t *testing.T) {
	e := startHMACGate(t, "")
	before, _ := scrape(t, e.admin)
	req := sign(t, e.request(t, "GET", "/", ""), "ci", hmacKey)
	send(t, "", req)
	send(t, "", req)
	send(t, "", req)
	send(t, "", sign(t, e.request(t, "GET", "/", ""), "nobody", hmacKey))
	after, raw := scrape(t, e.admin)
	delta := func(name string, labels map[string]string) float64 {
		return counter(after, name, labels) - counter(before, name, labels)
	}
	if got := delta("clawguard_hmac_replays_total", nil); got != 2 {
		t.Errorf("hmac_replays_total moved by %v, want 2\n%s", got, filterFamilies(raw, "clawguard_hmac"))
	}
	if got := delta("clawguard_auth_attempts_total", map[string]string{"method": "hmac", "result": "success"}); got != 1 {
		t.Errorf("hmac successes moved by %v, want 1", got)
	}
	if got := delta("clawguard_auth_attempts_total", map[string]string{"method": "hmac", "result": "failure"}); got != 3 {
		t.Errorf("hmac failures moved by %v, want 3", got)
	}
}

// TestHMACDoesNotTakeOverOtherCredentials: a request with a bearer token is
// judged by the token even if it also carries a signature (paired devices
// sign their token requests), and a signature is never mistaken for local
// trust.
func TestHMACDoesNotTakeOverOtherCredentials(t *testing.T) {
	cfg, e := hmacGateConfig(t, echoUpstream(t), t.TempDir(), "token "+testToken, "")
	testcaddy.Load(t, cfg)
	req := sign(t, e.request(t, "GET", "/", ""), "nobody", hmacKey)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if r := send(t, "", req); r.status != 200 || !strings.HasPrefix(r.seen.Header.Get("X-Clawguard-Identity"), "token:") {
		t.Fatalf("token with a foreign signature: %d %q", r.status, r.seen.Header.Get("X-Clawguard-Identity"))
	}
	// From loopback with no proxy headers this would be local, but the
	// client presented a (bad) signature: refused, not silently local.
	if r := send(t, "", sign(t, e.request(t, "GET", "/", ""), "ci", hmacKeyNew)); r.status != 401 {
		t.Fatalf("bad signature from loopback: %d, want 401", r.status)
	}
	if r := send(t, "", e.request(t, "GET", "/", "")); r.status != 200 || r.seen.Header.Get("X-Clawguard-Identity") != "local" {
		t.Fatalf("unsigned local request: %d", r.status)
	}
}

func TestHMACCaddyfile(t *testing.T) {
	ok := `clawguard {
		hmac ci {vault.hmac_ci} {
			max_age 2m
			max_body 64KiB
			origin https://gw.example.com
		}
		hmac ci-old {env.OLD_KEY} {
			max_age 2m
		}
	}`
	d, err := dispense(ok)
	if err != nil {
		t.Fatal(err)
	}
	var g Gate
	if err := g.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(g.HMAC)
	want := `{"keys":[{"key_id":"ci","secret":"{vault.hmac_ci}"},{"key_id":"ci-old","secret":"{env.OLD_KEY}"}],"max_age":120000000000,"max_body":65536,"origin":"https://gw.example.com"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}

	cases := []struct {
		name, block, want string
		line              int
	}{
		{"short literal key", "hmac ci tooshort", "hmac ci: key: 8 bytes; at least 32", 6},
		{"missing secret", "hmac ci", "want <keyid> <secret>", 6},
		{"bad keyid", "hmac \"a b\" " + hmacKey, "keyid", 6},
		{"duplicate keyid", "hmac ci " + hmacKey + "\n\t\thmac ci " + hmacKeyNew, "listed twice", 7},
		{"bad max_age", "hmac ci " + hmacKey + " {\n\t\t\tmax_age 0s\n\t\t}", "max_age", 7},
		{"huge max_age", "hmac ci " + hmacKey + " {\n\t\t\tmax_age 48h\n\t\t}", "max_age", 7},
		{"conflicting max_age", "hmac ci " + hmacKey + " {\n\t\t\tmax_age 1m\n\t\t}\n\t\thmac b " + hmacKeyNew + " {\n\t\t\tmax_age 2m\n\t\t}", "applies to every key", 10},
		{"bad max_body", "hmac ci " + hmacKey + " {\n\t\t\tmax_body lots\n\t\t}", "max_body", 7},
		{"bad origin", "hmac ci " + hmacKey + " {\n\t\t\torigin gw.example.com\n\t\t}", "origin", 7},
		{"unknown option", "hmac ci " + hmacKey + " {\n\t\t\tmax_ag 1m\n\t\t}", `unknown hmac option "max_ag"`, 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cf := "{\n\tadmin off\n}\n:18789 {\n\tclawguard {\n\t\t" + c.block + "\n\t}\n\trespond ok\n}\n"
			_, err := testcaddy.Adapt(cf)
			if err == nil {
				t.Fatalf("accepted:\n%s", cf)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprintf("Caddyfile:%d", c.line)) {
				t.Fatalf("error %q does not say %q at Caddyfile:%d", err, c.want, c.line)
			}
		})
	}
}

// dispense tokenizes src the way the Caddyfile adapter does.
func dispense(src string) (*caddyfile.Dispenser, error) {
	tokens, err := caddyfile.Tokenize([]byte(src), "Caddyfile")
	if err != nil {
		return nil, err
	}
	return caddyfile.NewDispenser(tokens), nil
}
