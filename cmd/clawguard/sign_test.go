package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/vault"
)

const signTestKey = "sign-cli-test-key-0123456789abcdef!"

// signServer is a real HTTP server verifying with httpsig, as the gate does,
// that records the last verified body.
type signServer struct {
	*httptest.Server
	mu       sync.Mutex
	lastBody string
}

func newSignServer(t *testing.T, keys map[string][]byte) *signServer {
	t.Helper()
	v, err := httpsig.NewVerifier(httpsig.Config{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	s := &signServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := v.Verify(r)
		if err != nil {
			var e *httpsig.Error
			errors.As(err, &e)
			w.WriteHeader(e.HTTPStatus())
			json.NewEncoder(w).Encode(map[string]string{"error": e.Message, "code": e.Code})
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.lastBody = string(b)
		s.mu.Unlock()
		w.Header().Set("X-Verified-Keyid", res.KeyID)
		io.WriteString(w, "ok "+r.Method+" "+res.KeyID)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *signServer) body() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastBody
}

func signCLI(stdin string, args ...string) cliResult {
	return runCLI(strings.NewReader(stdin), nil, append([]string{"sign"}, args...)...)
}

func TestSignCLIKeySources(t *testing.T) {
	srv := newSignServer(t, map[string][]byte{"ci": []byte(signTestKey)})

	t.Setenv("CLAWGUARD_TEST_HMAC", signTestKey)
	r := signCLI("", "--key-id", "ci", "--key-env", "CLAWGUARD_TEST_HMAC", srv.URL+"/status?x=1")
	wantCode(t, r, 0)
	if r.stdout != "ok GET ci" {
		t.Errorf("stdout %q", r.stdout)
	}

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(signTestKey+"\n"), 0o600) // a trailing newline, as echo writes it
	body := filepath.Join(dir, "payload.json")
	os.WriteFile(body, []byte(`{"deploy":"v1.2"}`), 0o600)
	r = signCLI("", "--key-id", "ci", "--key-file", keyFile, "--body-file", body, "-H", "Content-Type: application/json", srv.URL+"/hooks/deploy")
	wantCode(t, r, 0)
	if r.stdout != "ok POST ci" || srv.body() != `{"deploy":"v1.2"}` {
		t.Errorf("stdout %q, server saw body %q", r.stdout, srv.body())
	}

	state := filepath.Join(dir, "state")
	t.Setenv(vault.PassphraseEnv, "sign cli test passphrase")
	v, err := vault.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set("hmac_ci", []byte("base64:"+base64.StdEncoding.EncodeToString([]byte(signTestKey)))); err != nil {
		t.Fatal(err)
	}
	r = signCLI(`{"from":"stdin"}`, "-X", "PUT", "--key-id", "ci", "--key-vault", "hmac_ci", "--state-dir", state, "--body-file", "-", "--digest", "sha-512", srv.URL+"/items/1")
	wantCode(t, r, 0)
	if r.stdout != "ok PUT ci" || srv.body() != `{"from":"stdin"}` {
		t.Errorf("stdout %q, server saw body %q", r.stdout, srv.body())
	}
}

func TestSignCLIRefusals(t *testing.T) {
	srv := newSignServer(t, map[string][]byte{"ci": []byte(signTestKey)})
	t.Setenv("CLAWGUARD_TEST_HMAC", signTestKey)
	t.Setenv("CLAWGUARD_WRONG_HMAC", "a-different-key-of-sufficient-length-!!")
	t.Setenv("CLAWGUARD_SHORT_HMAC", "short")

	r := signCLI("", "--key-id", "ci", "--key-env", "CLAWGUARD_WRONG_HMAC", "--json", srv.URL+"/")
	wantCode(t, r, 1, "server answered 401")
	var out struct {
		Status int
		Body   string
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Status != 401 || !strings.Contains(out.Body, `"code":"bad_signature"`) {
		t.Errorf("--json output %q (%v)", r.stdout, err)
	}
	wantCode(t, signCLI("", "--key-id", "nobody", "--key-env", "CLAWGUARD_TEST_HMAC", srv.URL+"/"), 1, "server answered 401")
	wantCode(t, signCLI("", "--key-id", "ci", "--key-env", "CLAWGUARD_SHORT_HMAC", srv.URL+"/"), 1, "at least 32 are required")
	wantCode(t, signCLI("", "--key-id", "ci", "--key-env", "CLAWGUARD_UNSET_HMAC", srv.URL+"/"), 1, "not set")
	// Keys are never taken from argv: there is no flag for it.
	wantCode(t, signCLI("", "--key-id", "ci", "--key", signTestKey, srv.URL+"/"), 2)
	wantCode(t, signCLI("", "--key-id", "ci", srv.URL+"/"), 2, "exactly one of")
	wantCode(t, signCLI("", "--key-id", "ci", "--key-env", "A", "--key-file", "B", srv.URL+"/"), 2, "exactly one of")
	wantCode(t, signCLI("", "--key-env", "CLAWGUARD_TEST_HMAC", srv.URL+"/"), 2, "--key-id is required")
	wantCode(t, signCLI("", "--key-id", "ci", "--key-env", "CLAWGUARD_TEST_HMAC", "ftp://x/"), 2, "want http")
	wantCode(t, signCLI("", "--key-id", "ci", "--key-env", "CLAWGUARD_TEST_HMAC", "-H", "NoColon", srv.URL+"/"), 2)
	wantCode(t, signCLI("", "--key-id", "ci", "--key-env", "CLAWGUARD_TEST_HMAC", "--digest", "md5", "--body-file", "-", srv.URL+"/"), 1, "unsupported algorithm")
}

// TestSignCLIPrintWithCurl: --print's output, handed to real curl with
// -H @file, is a request the verifier accepts; curl sent the same bytes.
func TestSignCLIPrintWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	srv := newSignServer(t, map[string][]byte{"ci": []byte(signTestKey)})
	t.Setenv("CLAWGUARD_TEST_HMAC", signTestKey)
	dir := t.TempDir()
	payload := filepath.Join(dir, "payload.json")
	os.WriteFile(payload, []byte(`{"event":"push"}`), 0o600)
	url := srv.URL + "/hooks/deploy?source=ci"

	r := signCLI("", "--print", "--key-id", "ci", "--key-env", "CLAWGUARD_TEST_HMAC", "-X", "POST", "--body-file", payload, "-H", "X-Request-Id: 42", url)
	wantCode(t, r, 0)
	for _, h := range []string{"X-Request-Id: 42\n", "Content-Digest: sha-256=:", "Signature-Input: sig1=(\"@method\" \"@target-uri\" \"content-digest\" \"x-request-id\");created=", "Signature: sig1=:"} {
		if !strings.Contains(r.stdout, h) {
			t.Errorf("--print output lacks %q:\n%s", h, r.stdout)
		}
	}
	headers := filepath.Join(dir, "sig.txt")
	os.WriteFile(headers, []byte(r.stdout), 0o600)
	out, err := exec.Command(curl, "-sS", "-H", "@"+headers, "--data-binary", "@"+payload, url).CombinedOutput()
	if err != nil || string(out) != "ok POST ci" {
		t.Fatalf("curl: %v: %s", err, out)
	}
	if srv.body() != `{"event":"push"}` {
		t.Errorf("server saw body %q", srv.body())
	}
	// The same headers again are a replay.
	out, _ = exec.Command(curl, "-sS", "-H", "@"+headers, "--data-binary", "@"+payload, url).CombinedOutput()
	if !strings.Contains(string(out), `"code":"replay"`) {
		t.Errorf("replayed curl request: %s", out)
	}

	r = signCLI("", "--print", "--json", "--key-id", "ci", "--key-env", "CLAWGUARD_TEST_HMAC", url)
	wantCode(t, r, 0)
	var js struct{ Headers map[string][]string }
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || len(js.Headers["Signature"]) != 1 || js.Headers["Content-Digest"] != nil {
		t.Errorf("--print --json of a GET: %q (%v)", r.stdout, err)
	}
}

func TestSignCLIInclude(t *testing.T) {
	srv := newSignServer(t, map[string][]byte{"ci": []byte(signTestKey)})
	t.Setenv("CLAWGUARD_TEST_HMAC", signTestKey)
	r := signCLI("", "--include", "--key-id", "ci", "--key-env", "CLAWGUARD_TEST_HMAC", srv.URL+"/")
	wantCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "HTTP/1.1 200 OK\n") || !strings.Contains(r.stdout, "X-Verified-Keyid: ci\n") || !strings.HasSuffix(r.stdout, "\n\nok GET ci") {
		t.Errorf("--include output:\n%s", r.stdout)
	}
}
