package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/internal/testcaddy"
)

// The placeholders the README documents, {http.auth.user.id},
// {http.auth.user.method} and {http.auth.user.name}, reach a header_up of
// reverse_proxy for every method whose values the gate prepares at
// provision (tokens, users, HMAC keys, local) and stay each request's own.
func TestGatePlaceholders(t *testing.T) {
	up := upstream(t)
	port := testcaddy.FreePort(t)
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), 5)
	cfg := testcaddy.Global(testcaddy.FreePort(t)) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token %s
		token ops-0123456789abcdefghijklmnop
		password alice %s
		password bob %s
		hmac ci %s
		state_dir %s
	}
	reverse_proxy %s {
		header_up X-Seen-Id {http.auth.user.id}
		header_up X-Seen-Method {http.auth.user.method}
		header_up X-Seen-Name "<{http.auth.user.name}>"
	}
}
`, port, testToken, hash, hash, hmacKey, t.TempDir(), strings.TrimPrefix(up.URL, "http://"))
	testcaddy.Load(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	fp := func(tok string) string { d := sha256.Sum256([]byte(tok)); return hex.EncodeToString(d[:4]) }

	type want struct{ id, method, name string }
	cases := []struct {
		name string
		req  func() *http.Request
		want want
	}{
		{"token", bearerReq(base, testToken), want{"token:" + fp(testToken), "token", fp(testToken)}},
		{"second token", bearerReq(base, "ops-0123456789abcdefghijklmnop"), want{"token:" + fp("ops-0123456789abcdefghijklmnop"), "token", fp("ops-0123456789abcdefghijklmnop")}},
		{"password alice", basicReq(base, "alice"), want{"user:alice", "password", "alice"}},
		{"password bob", basicReq(base, "bob"), want{"user:bob", "password", "bob"}},
		{"local", func() *http.Request { r, _ := http.NewRequest("GET", base+"/x", nil); return r }, want{"local", "local", ""}},
		{"hmac", func() *http.Request {
			r, _ := http.NewRequest("GET", base+"/x", nil)
			return sign(t, r, "ci", hmacKey)
		}, want{"hmac:ci", "hmac", "ci"}},
	}
	// Twice over, interleaved: a request never sees another's values.
	for round := range 2 {
		for _, c := range cases {
			req := c.req()
			req.Header.Set("X-Clawguard-Identity", "device:spoofed")
			resp, err := testcaddy.Client("").Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s (round %d): status %d: %s", c.name, round, resp.StatusCode, body)
			}
			var seen http.Header
			json.Unmarshal(body, &seen)
			got := want{seen.Get("X-Seen-Id"), seen.Get("X-Seen-Method"), strings.Trim(seen.Get("X-Seen-Name"), "<>")}
			if got != c.want {
				t.Errorf("%s (round %d): placeholders %+v, want %+v", c.name, round, got, c.want)
			}
			if seen.Get("X-Clawguard-Identity") != c.want.id || seen.Get("X-Clawguard-Method") != c.want.method {
				t.Errorf("%s: identity headers %q %q", c.name, seen.Get("X-Clawguard-Identity"), seen.Get("X-Clawguard-Method"))
			}
			if seen.Get("Authorization") != "" || seen.Get("Signature") != "" {
				t.Errorf("%s: the credential reached the upstream", c.name)
			}
		}
	}
}

func bearerReq(base, tok string) func() *http.Request {
	return func() *http.Request {
		r, _ := http.NewRequest("GET", base+"/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("X-Forwarded-For", "203.0.113.9") // not local
		return r
	}
}

func basicReq(base, user string) func() *http.Request {
	return func() *http.Request {
		r, _ := http.NewRequest("GET", base+"/x", nil)
		r.Header.Set("Authorization", basic(user, testPassword))
		return r
	}
}

// Two requests of the same identity get their own header slices, so a
// handler after the gate that rewrites a value in place (Caddy's header
// replacements do) changes only its request; and the identity variable the
// clawguard_signed transport reads is set.
func TestAdmitGivesEachRequestItsOwnHeaders(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), 5)
	g := benchGate(t, "token "+testToken+"\npassword alice "+string(hash))
	a := newBenchRequest("192.0.2.10:40000", map[string]string{"Authorization": "Bearer " + testToken})
	b := newBenchRequest("192.0.2.10:40001", map[string]string{"Authorization": "Bearer " + testToken})
	for _, br := range []*benchRequest{a, b} {
		if err := g.ServeHTTP(br.w, br.r, nopHandler{}); err != nil {
			t.Fatal(err)
		}
	}
	a.r.Header["X-Clawguard-Identity"][0] = "rewritten"
	a.r.Header["X-Clawguard-Method"][0] = "rewritten"
	if got := b.r.Header.Get("X-Clawguard-Identity"); !strings.HasPrefix(got, "token:") || b.r.Header.Get("X-Clawguard-Method") != "token" {
		t.Fatalf("one request's rewrite reached another: %v", b.r.Header)
	}
	id, ok := caddyhttp.GetVar(b.r.Context(), gateIdentityVar).(authn.Identity)
	if !ok || id.Method != authn.MethodToken {
		t.Fatalf("identity variable %v, %v", id, ok)
	}
	repl := b.r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if v, _ := repl.GetString("http.auth.user.id"); v != "token:"+id.Name {
		t.Fatalf("{http.auth.user.id} = %q", v)
	}
}

// methodIndex and the method label's values agree, so every attempt is
// counted under its own method.
func TestMethodIndex(t *testing.T) {
	for i, name := range metricMethodNames {
		m := authn.Method(name)
		if name == methodNone {
			m = ""
		}
		if got := methodIndex(m); got != i {
			t.Errorf("methodIndex(%q) = %d, want %d", m, got, i)
		}
	}
}
