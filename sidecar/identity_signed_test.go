package sidecar_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	_ "github.com/clawguard/clawguard/caddymodule" // the gate and the clawguard_signed transport
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/vault"
)

// TestGateSignedIdentity runs the whole path of docs/design.md's picture: a
// client authenticates at the gate (real Caddy), which proxies to the real
// sidecar daemon over its unix socket with the clawguard_signed transport;
// both read the identity key from the same vault. The sidecar, configured
// with identity_keys, serves the signed route and refuses the same gate's
// unsigned route. Not parallel: Caddy is a process singleton.
func TestGateSignedIdentity(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef-gate-key")
	logs := &logBuffer{}
	d := startDaemon(t, `{"instance": "INSTANCE", "identity_keys": {"gate1": "sidecar-identity"}}`, func(o *sidecar.DaemonOptions) {
		if err := o.Secrets.(*vault.Vault).Set("sidecar-identity", key); err != nil {
			t.Fatal(err)
		}
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	t.Setenv(vault.PassphraseEnv, "test passphrase") // the vault testVault made
	token := "gate-token-0123456789abcdefghijkl"
	t.Setenv("CLAWGUARD_TEST_GATE_TOKEN", token)
	port := testcaddy.FreePort(t)
	testcaddy.Load(t, testcaddy.Global(testcaddy.FreePort(t))+fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token {env.CLAWGUARD_TEST_GATE_TOKEN}
		local_trust off
		state_dir %s
	}
	handle_path /signed/* {
		reverse_proxy unix/%s {
			transport clawguard_signed {
				identity_key gate1 {vault.sidecar-identity}
				state_dir %s
			}
		}
	}
	handle_path /plain/* {
		reverse_proxy unix/%s
	}
}
`, port, t.TempDir(), d.socket, d.state, d.socket))

	do := func(method, path, body string) (int, map[string]any) {
		return throughGate(t, port, token, method, path, body)
	}
	if code, body := do("GET", "/signed/v1/sandboxes", ""); code != 200 {
		t.Fatalf("signed route: %d %v", code, body)
	}
	if code, body := do("GET", "/plain/v1/sandboxes", ""); code != 401 || body["code"] != "no_identity" {
		t.Fatalf("unsigned route: %d %v, want 401 no_identity", code, body)
	}
	// The sidecar acts on the identity the gate signed: it refuses (no
	// sandbox profile), and its log names the token identity.
	if code, body := do("POST", "/signed/v1/exec", `{"agent":"main","argv":["/bin/echo","hi"]}`); code != 403 || body["code"] != "no_sandbox_profile" {
		t.Fatalf("exec through the signed route: %d %v", code, body)
	}
	if !strings.Contains(logs.String(), `"identity":"token:CLAWGUARD_TEST_GATE_TOKEN"`) {
		t.Fatalf("sidecar log does not name the gate's identity:\n%s", logs.String())
	}
}

// throughGate sends a request with the gate's token to the Caddy on port,
// with a spoofed identity header the gate must strip, and decodes the JSON
// answer.
func throughGate(t *testing.T, port int, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Clawguard-Identity", "local") // a client's attempt; the gate strips it
	resp, err := testcaddy.Client("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
