package caddymodule

import (
	"fmt"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/vault"
)

func TestTokensFromVaultAndEnv(t *testing.T) {
	stateDir := t.TempDir()
	t.Setenv(vault.PassphraseEnv, "test passphrase for the gate")
	v, err := vault.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	vaultToken := "vault-token-0123456789abcdefghij"
	if err := v.Set("gateway_token", []byte(vaultToken)); err != nil {
		t.Fatal(err)
	}
	envToken := "env-token-0123456789abcdefghijkl"
	t.Setenv("CLAWGUARD_TEST_TOKEN", envToken)

	up := upstream(t)
	port := testcaddy.FreePort(t)
	testcaddy.Load(t, testcaddy.Global(testcaddy.FreePort(t))+fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token {vault.gateway_token} {env.CLAWGUARD_TEST_TOKEN}
		state_dir %s
		local_trust off
	}
	reverse_proxy %s
}
`, port, stateDir, strings.TrimPrefix(up.URL, "http://")))
	e := &gateEnv{base: fmt.Sprintf("http://127.0.0.1:%d", port), up: up}
	for tok, identity := range map[string]string{vaultToken: "token:gateway_token", envToken: "token:CLAWGUARD_TEST_TOKEN"} {
		r := e.do(t, "", "GET", "/", map[string]string{"Authorization": "Bearer " + tok})
		if r.status != 200 || r.seen.Get("X-Clawguard-Identity") != identity {
			t.Fatalf("%s: status %d identity %q", identity, r.status, r.seen.Get("X-Clawguard-Identity"))
		}
	}
}

func TestMissingSecretFailsLoad(t *testing.T) {
	t.Setenv(vault.PassphraseEnv, "test passphrase for the gate")
	for name, tok := range map[string]string{
		"unset env":           "{env.CLAWGUARD_TEST_UNSET}",
		"missing vault entry": "{vault.nope}",
	} {
		cfg := testcaddy.Global(testcaddy.FreePort(t)) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token %s
		state_dir %s
	}
	respond ok
}
`, testcaddy.FreePort(t), tok, t.TempDir())
		err := testcaddy.LoadErr(cfg)
		if err == nil {
			t.Fatalf("%s: config loaded", name)
		}
		if !strings.Contains(err.Error(), "token 1") {
			t.Fatalf("%s: error %q does not name the token", name, err)
		}
	}
}
