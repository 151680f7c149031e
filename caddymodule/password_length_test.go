package caddymodule

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/wire"
)

// TestGateRefusesPasswordsPastBcryptsLimit attacks bcrypt's 72-byte limit
// through Caddy: the owner's password is "A"*72+"SECRET" (its hash, as a
// truncating tool like htpasswd writes it, is that of the first 72 bytes),
// and "A"*72+"WRONG" must not log in as them. The refusals count toward the
// rate limit; a password of exactly 72 bytes still works.
func TestGateRefusesPasswordsPastBcryptsLimit(t *testing.T) {
	prefix := strings.Repeat("A", 72)
	hash, err := bcrypt.GenerateFromPassword([]byte(prefix), 5)
	if err != nil {
		t.Fatal(err)
	}
	up := upstream(t)
	port := testcaddy.FreePort(t)
	testcaddy.Load(t, testcaddy.Global(testcaddy.FreePort(t))+fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		password owner %s
		state_dir %s
	}
	reverse_proxy %s
}
`, port, "$2y$"+string(hash[4:]), t.TempDir(), strings.TrimPrefix(up.URL, "http://")))
	e := &gateEnv{base: fmt.Sprintf("http://127.0.0.1:%d", port), up: up}

	if r := e.do(t, "127.0.0.5", "GET", "/", with(remote, "Authorization", basic("owner", prefix))); r.status != 200 || r.seen.Get("X-Clawguard-Identity") != "user:owner" {
		t.Fatalf("the right 72-byte password: status %d, identity %q (body %s)", r.status, r.seen.Get("X-Clawguard-Identity"), r.body)
	}
	// The attacker's guess, and the owner's own over-long password: bcrypt
	// cannot tell them apart, so both are refused.
	for i := 1; i <= 10; i++ {
		pass := prefix + "WRONG"
		if i == 10 {
			pass = prefix + "SECRET"
		}
		r := e.do(t, "127.0.0.3", "GET", "/", with(remote, "Authorization", basic("owner", pass)))
		if r.status != 401 {
			t.Fatalf("attempt %d, 72 A's+%s: status %d, want 401 (upstream saw identity %q)", i, pass[72:], r.status, r.seen.Get("X-Clawguard-Identity"))
		}
		var body wire.ErrorBody
		if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Code == "" || body.Error == "" {
			t.Fatalf("refusal body %q is not {error, code}", r.body)
		}
		if body.Code != "password_too_long" || body.Error != authn.ErrPasswordTooLong.Error() {
			t.Fatalf("refusal %+v, want password_too_long with authn.ErrPasswordTooLong's message", body)
		}
	}
	// The refusals were failures: the client is locked out now.
	if r := e.do(t, "127.0.0.3", "GET", "/", with(remote, "Authorization", basic("owner", prefix))); r.status != 429 {
		t.Fatalf("after 10 long passwords: status %d, want 429", r.status)
	}
}
