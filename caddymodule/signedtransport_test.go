package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/vault"
)

const identityKey = "gate-identity-key-0123456789abcdef-0123"

// verifiedIdentity is what identityUpstream reports about a request.
type verifiedIdentity struct {
	Code     string `json:"code"` // httpsig refusal code; empty when verified
	Identity string `json:"identity"`
	Method   string `json:"method"`
	KeyID    string `json:"keyid"`
	Path     string `json:"path"`
}

// identityUpstream is a real upstream that checks every request's identity
// signature with httpsig's identity-mode verifier, as the sidecar does, and
// reports the result (also as the greeting of a WebSocket at /ws).
func identityUpstream(t *testing.T, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	v, err := httpsig.NewVerifier(httpsig.Config{Identity: true, Keys: map[string][]byte{"gate1": []byte(identityKey)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		out := verifiedIdentity{Path: r.URL.RequestURI()}
		if res, err := v.Verify(r); err != nil {
			out.Code = httpsig.CodeOf(err)
		} else {
			out.KeyID = res.KeyID
			out.Identity = r.Header.Get("X-Clawguard-Identity")
			out.Method = r.Header.Get("X-Clawguard-Method")
		}
		b, _ := json.Marshal(out)
		if strings.HasSuffix(r.URL.Path, "/ws") && out.Code == "" {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			c.Write(r.Context(), websocket.MessageText, b)
			c.Close(websocket.StatusNormalClosure, "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type signedEnv struct {
	gated, ungated string // base URLs
	hits           *atomic.Int64
	up             *httptest.Server
}

// startSignedProxy runs a gated site proxying /api/* (prefix stripped) to
// an identity-checking upstream through clawguard_signed, with a header_up
// that tries to change the identity; and an ungated site using the same
// transport.
func startSignedProxy(t *testing.T) *signedEnv {
	t.Helper()
	stateDir := t.TempDir()
	t.Setenv(vault.PassphraseEnv, "test passphrase for the gate")
	v, err := vault.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set("upstream-identity", []byte(identityKey)); err != nil {
		t.Fatal(err)
	}
	e := &signedEnv{hits: new(atomic.Int64)}
	e.up = identityUpstream(t, e.hits)
	up := strings.TrimPrefix(e.up.URL, "http://")
	gated, ungated := testcaddy.FreePort(t), testcaddy.FreePort(t)
	testcaddy.Load(t, testcaddy.Global(testcaddy.FreePort(t))+fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token %s
		hmac ci %s
		state_dir %s
	}
	handle_path /api/* {
		reverse_proxy %s {
			header_up X-Clawguard-Identity local
			header_up X-Clawguard-Extra injected
			transport clawguard_signed {
				identity_key gate1 {vault.upstream-identity}
				state_dir %s
				dial_timeout 5s
			}
		}
	}
}

http://:%d {
	bind 127.0.0.1
	reverse_proxy %s {
		transport clawguard_signed {
			identity_key gate1 %s
		}
	}
}
`, gated, testToken, hmacKey, stateDir, up, stateDir, ungated, up, identityKey))
	e.gated = fmt.Sprintf("http://127.0.0.1:%d", gated)
	e.ungated = fmt.Sprintf("http://127.0.0.1:%d", ungated)
	return e
}

func (e *signedEnv) get(t *testing.T, req *http.Request) (int, verifiedIdentity) {
	t.Helper()
	resp, err := testcaddy.Client("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got verifiedIdentity
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, got
}

func TestSignedTransportUpstreamVerifiesIdentity(t *testing.T) {
	e := startSignedProxy(t)

	// A token client that also tries to assert an identity itself.
	req, _ := http.NewRequest("GET", e.gated+"/api/v1/things?x=1&y=%2F", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("X-Clawguard-Identity", "local")
	req.Header.Set("X-Forwarded-For", "203.0.113.8")
	status, got := e.get(t, req)
	if status != 200 || got.Code != "" {
		t.Fatalf("status %d, upstream verification code %q", status, got.Code)
	}
	// handle_path stripped /api: the signature covers what the upstream
	// received, which only the transport knows.
	if got.Path != "/v1/things?x=1&y=%2F" || got.KeyID != "gate1" {
		t.Fatalf("path %q keyid %q", got.Path, got.KeyID)
	}
	// The header_up lines tried to change the identity and add an
	// X-Clawguard-* header; the transport signs only what the gate decided.
	if !strings.HasPrefix(got.Identity, "token:") || got.Method != "token" {
		t.Fatalf("upstream verified identity %q method %q", got.Identity, got.Method)
	}

	// An HMAC client: its own signature is consumed and replaced by the
	// gate's identity signature.
	req, _ = http.NewRequest("POST", e.gated+"/api/hook", strings.NewReader(`{"a":1}`))
	sign(t, req, "ci", hmacKey)
	status, got = e.get(t, req)
	if status != 200 || got.Code != "" || got.Identity != "hmac:ci" || got.Path != "/hook" {
		t.Fatalf("hmac client: status %d %+v", status, got)
	}

	// The check at the upstream is real: forged headers sent straight to
	// it are refused, and so is a correct signature for another path.
	forged, _ := http.NewRequest("GET", e.up.URL+"/v1/things", nil)
	forged.Header.Set("X-Clawguard-Identity", "local")
	if _, got := e.get(t, forged); got.Code != httpsig.CodeSignatureMissing {
		t.Fatalf("unsigned identity at the upstream: code %q", got.Code)
	}
	moved, _ := http.NewRequest("GET", e.up.URL+"/v1/things", nil)
	moved.Header.Set("X-Clawguard-Identity", "local")
	if err := httpsig.SignIdentity(moved, "gate1", []byte(identityKey)); err != nil {
		t.Fatal(err)
	}
	moved.URL.Path = "/v1/admin"
	if _, got := e.get(t, moved); got.Code != httpsig.CodeBadSignature {
		t.Fatalf("identity signature moved to another path: code %q", got.Code)
	}
}

func TestSignedTransportRefusesUngatedRequests(t *testing.T) {
	e := startSignedProxy(t)
	before := e.hits.Load()
	req, _ := http.NewRequest("GET", e.ungated+"/anything", nil)
	req.Header.Set("X-Clawguard-Identity", "local")
	if status, _ := e.get(t, req); status != http.StatusBadGateway {
		t.Fatalf("ungated request through clawguard_signed: %d, want 502", status)
	}
	if e.hits.Load() != before {
		t.Fatal("an ungated request reached the upstream")
	}
}

func TestSignedTransportWebSocket(t *testing.T) {
	e := startSignedProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, strings.Replace(e.gated, "http", "ws", 1)+"/api/ws", &websocket.DialOptions{
		Subprotocols: []string{"bearer." + testToken},
		HTTPClient:   testcaddy.Client(""),
	})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got verifiedIdentity
	if err := json.Unmarshal(msg, &got); err != nil || got.Code != "" || !strings.HasPrefix(got.Identity, "token:") {
		t.Fatalf("upstream greeting %s (%v)", msg, err)
	}
}

func TestSignedTransportCaddyfile(t *testing.T) {
	adapt := func(block string) (string, error) {
		cfg, err := testcaddy.Adapt("{\n\tadmin off\n}\n:18789 {\n\treverse_proxy 127.0.0.1:9 {\n\t\ttransport clawguard_signed {\n\t\t\t" +
			block + "\n\t\t}\n\t}\n}\n")
		return string(cfg), err
	}
	cfg, err := adapt("identity_key gate1 {vault.k}\n\t\t\tdial_timeout 3s\n\t\t\tkeepalive off\n\t\t\tstate_dir /var/lib/cg")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"protocol":"clawguard_signed"`, `"identity_key_id":"gate1"`, `"identity_key":"{vault.k}"`,
		`"state_dir":"/var/lib/cg"`, `"dial_timeout":3000000000`, `"keep_alive":{"enabled":false}`} {
		if !strings.Contains(cfg, want) {
			t.Fatalf("adapted config lacks %s:\n%s", want, cfg)
		}
	}
	for _, c := range []struct{ block, want, line string }{
		{"dial_timeout 3s", "identity_key <keyid> <secret> is required", ""},
		{"identity_key gate1 short", "key: 5 bytes; at least 32", "Caddyfile:7"},
		{"identity_key gate1", "want identity_key <keyid> <secret>", "Caddyfile:7"},
		{"identity_key gate1 {env.K}\n\t\t\tdial_timout 3s", "dial_timout", "Caddyfile:8"},
	} {
		_, err := adapt(c.block)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.line) {
			t.Errorf("%q: error %v, want %q at %s", c.block, err, c.want, c.line)
		}
	}
}

func FuzzSignedTransportCaddyfile(f *testing.F) {
	for _, s := range []string{
		"clawguard_signed {\n identity_key a {vault.k}\n dial_timeout 3s\n}",
		"clawguard_signed {\n identity_key a 0123456789abcdef0123456789abcdef\n tls\n tls_trust_pool file {\n pem_file /x\n }\n}",
		"clawguard_signed {\n state_dir /x\n identity_key\n}",
		"clawguard_signed extra",
		"clawguard_signed {\n {\n}\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		d, err := dispense(input)
		if err != nil {
			return
		}
		var st SignedTransport
		if err := st.UnmarshalCaddyfile(d); err != nil {
			return
		}
		if st.IdentityKeyID == "" || st.IdentityKey == "" {
			t.Fatalf("parsed without an identity key: %q", input)
		}
		if _, err := json.Marshal(&st); err != nil {
			t.Fatal(err)
		}
	})
}
