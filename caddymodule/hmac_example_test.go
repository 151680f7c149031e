package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/vault"
)

// TestCaddyfileExampleHMAC uncomments the example's hmac and
// clawguard_signed blocks and runs the result as documented, so the
// commented options stay valid.
func TestCaddyfileExampleHMAC(t *testing.T) {
	src, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	example, uncommented := uncommentExample(string(src), "hmac ci ", "transport clawguard_signed ")
	if uncommented < 8 {
		t.Fatalf("found only %d lines of the hmac and clawguard_signed examples", uncommented)
	}
	stateDir := t.TempDir()
	t.Setenv("CLAWGUARD_STATE_DIR", stateDir)
	t.Setenv(vault.PassphraseEnv, "example test passphrase")
	v, err := vault.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{"gateway_token": testToken, "hmac_ci": hmacKey, "upstream_identity": identityKey} {
		if err := v.Set(name, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	port := testcaddy.FreePort(t)
	cfg := strings.NewReplacer(
		"localhost:2019", fmt.Sprintf("localhost:%d", testcaddy.FreePort(t)),
		"127.0.0.1:18788", fmt.Sprintf("127.0.0.1:%d", testcaddy.FreePort(t)),
		":18789", fmt.Sprintf(":%d", port),
	).Replace(example)
	if !strings.Contains(cfg, "\t\thmac ci {vault.hmac_ci} {\n") || !strings.Contains(cfg, "\t\ttransport clawguard_signed {\n") {
		t.Fatalf("uncommenting failed:\n%s", cfg)
	}
	testcaddy.Load(t, cfg)

	// Clients sign for the public origin the example names.
	signed := func(key string) *http.Request {
		req, _ := http.NewRequest("GET", "https://gw.example.com/hooks/x", nil)
		sign(t, req, "ci", key)
		out, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/hooks/x", port), nil)
		out.Header = req.Header
		out.Header.Set("X-Forwarded-For", "203.0.113.1") // not local
		return out
	}
	status := func(req *http.Request) int {
		resp, err := testcaddy.Client("").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(signed(hmacKeyNew)); got != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d, want 401", got)
	}
	// Admitted and signed for the upstream; nothing listens there.
	if got := status(signed(hmacKey)); got != http.StatusBadGateway {
		t.Fatalf("signed request: %d, want 502 from the absent upstream", got)
	}
}
