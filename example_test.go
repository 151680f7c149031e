package clawguard

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/vault"
)

// TestCaddyfileExample keeps Caddyfile.example honest: `caddy fmt` leaves it
// unchanged, it adapts without warnings, and it runs as documented once the
// vault holds gateway_token.
func TestCaddyfileExample(t *testing.T) {
	src, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	if formatted := caddyfile.Format(src); !bytes.Equal(formatted, src) {
		t.Fatal("Caddyfile.example is not `caddy fmt` clean")
	}

	stateDir := t.TempDir()
	t.Setenv(statedir.EnvVar, stateDir)
	t.Setenv(vault.PassphraseEnv, "example test passphrase")
	v, err := vault.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	token := "example-token-0123456789abcdefghij"
	if err := v.Set("gateway_token", []byte(token)); err != nil {
		t.Fatal(err)
	}
	// Same file, on ports free for this test.
	port, ui := testcaddy.FreePort(t), testcaddy.FreePort(t)
	cfg := strings.NewReplacer(
		"localhost:2019", fmt.Sprintf("localhost:%d", testcaddy.FreePort(t)),
		":18789", fmt.Sprintf(":%d", port),
		"127.0.0.1:18788", fmt.Sprintf("127.0.0.1:%d", ui),
	).Replace(string(src))
	testcaddy.Load(t, cfg)

	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.1") // not local
	resp, err := testcaddy.Client("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated request: %d, want 401", resp.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = testcaddy.Client("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The gate let it through; nothing listens on the example's upstream.
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("authenticated request: %d, want 502 from the absent upstream", resp.StatusCode)
	}
	// The admin UI is on its own listener, not on the gateway's site.
	for base, want := range map[string]int{fmt.Sprintf("http://127.0.0.1:%d", port): 404, fmt.Sprintf("http://127.0.0.1:%d", ui): 200} {
		resp, err := testcaddy.Client("").Get(base + "/.clawguard/ui/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s/.clawguard/ui/: %d, want %d", base, resp.StatusCode, want)
		}
	}
}
