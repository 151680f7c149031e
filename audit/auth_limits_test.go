package audit_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/audit"
)

// TestCheckAuthPasswordLength: a gate with password entries gets an info
// finding about bcrypt's 72-byte limit; one without is skipped.
func TestCheckAuthPasswordLength(t *testing.T) {
	f := newFixture(t)
	f.caddyfile(`http://:18789 {
	bind 127.0.0.1
	clawguard {
		password alice $2y$12$PxKg55xo13V7zI/9dE99ZuOTZl.PsNAHnTF65SN/lsJPrcJGqxI9a
		password bob $2y$12$PxKg55xo13V7zI/9dE99ZuOTZl.PsNAHnTF65SN/lsJPrcJGqxI9a
	}
	reverse_proxy 127.0.0.1:18790
}
`)
	fs := f.check("auth.password_length")
	if len(fs) != 1 {
		t.Fatalf("want one finding for the gate, got:\n%s", dump(fs))
	}
	fd := wantFinding(t, fs, audit.SeverityInfo, "users alice, bob", "only the first 72 bytes", "401 password_too_long")
	if !strings.Contains(fd.Remedy, "at most 72 bytes") {
		t.Fatalf("remedy %q does not say to pick a password of at most 72 bytes", fd.Remedy)
	}

	f = newFixture(t)
	f.cleanSetup()
	rep := f.run()
	wantNone(t, findings(t, rep, "auth.password_length"))
	if s := checkStatus(t, rep, "auth.password_length"); s.Status != audit.StatusSkipped {
		t.Fatalf("without passwords the check is skipped, got %+v", s)
	}
}

// hmacKeyLiteral is a literal HMAC key of 40 bytes (secrets.plaintext flags
// it; this check must not show it).
const hmacKeyLiteral = "shared-hmac-key-0123456789abcdef-ABCDEFG"

// twoHMACSites is a Caddyfile with two sites whose gates accept key ci with
// secrets a and b and state dirs dirA and dirB ("" for no state_dir line).
func twoHMACSites(a, dirA, b, dirB string) string {
	site := func(port int, secret, dir string) string {
		if dir != "" {
			dir = "\n\t\tstate_dir " + dir
		}
		return fmt.Sprintf(`http://:%d {
	bind 127.0.0.1
	clawguard {
		hmac ci %s%s
	}
	reverse_proxy 127.0.0.1:18790
}
`, port, secret, dir)
	}
	return site(18789, a, dirA) + "\n" + site(18791, b, dirB)
}

// TestCheckAuthHMACReplayScope: gates that accept the same HMAC key but keep
// their replay caches in different state dirs each accept a signature once.
func TestCheckAuthHMACReplayScope(t *testing.T) {
	f := newFixture(t)
	other := t.TempDir()
	f.caddyfile(twoHMACSites(hmacKeyLiteral, f.state, hmacKeyLiteral, other))
	fs := f.check("auth.hmac_replay_scope")
	fd := wantFinding(t, fs, audit.SeverityWarn, "HMAC key ci", "server srv0 with state dir "+f.state, "server srv1 with state dir "+other, "replay")
	if len(fs) != 1 || strings.Contains(fd.Finding+fd.Remedy, hmacKeyLiteral) {
		t.Fatalf("want one finding that does not show the key:\n%s", dump(fs))
	}

	for _, c := range []struct{ name, cfg string }{
		{"one state dir", twoHMACSites(hmacKeyLiteral, other, hmacKeyLiteral, other)},
		{"the same dir written two ways", twoHMACSites(hmacKeyLiteral, other, hmacKeyLiteral, other+"/./")},
		{"no state_dir and the default state dir", twoHMACSites(hmacKeyLiteral, "", hmacKeyLiteral, f.state)},
		{"same keyid, other secrets", twoHMACSites(hmacKeyLiteral, f.state, strings.ToUpper(hmacKeyLiteral), other)},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.caddyfile(c.cfg)
			wantNone(t, f.check("auth.hmac_replay_scope"))
		})
	}

	// A Caddy JSON config, with the gate's own hmac shape.
	gate := func(dir string) string {
		return `{"handler": "clawguard", "state_dir": "` + dir + `", "hmac": {"keys": [{"key_id": "ci", "secret": "` + hmacKeyLiteral + `"}]}}`
	}
	json := func(dirA, dirB string) string {
		return `{"apps": {"http": {"servers": {
  "a": {"listen": ["127.0.0.1:18789"], "routes": [{"handle": [` + gate(dirA) + `, {"handler": "reverse_proxy", "upstreams": [{"dial": "127.0.0.1:18790"}]}]}]},
  "b": {"listen": ["127.0.0.1:18791"], "routes": [{"handle": [` + gate(dirB) + `, {"handler": "reverse_proxy", "upstreams": [{"dial": "127.0.0.1:18790"}]}]}]}}}}}`
	}
	f.opts.Config = f.write(f.conf, "caddy.json", json(f.state, other), 0o600)
	wantFinding(t, f.check("auth.hmac_replay_scope"), audit.SeverityWarn, "HMAC key ci", "server a", "server b")
	f.write(f.conf, "caddy.json", json(filepath.Join(other, "x", ".."), other), 0o600)
	wantNone(t, f.check("auth.hmac_replay_scope"))
	// A gate without state_dir uses the clawguard app's.
	withApp := func(dirA, dirB string) string {
		return strings.Replace(json(dirA, dirB), `{"apps": {`, `{"apps": {"clawguard": {"state_dir": "`+other+`"}, `, 1)
	}
	f.write(f.conf, "caddy.json", withApp("", other), 0o600)
	wantNone(t, f.check("auth.hmac_replay_scope"))
	f.write(f.conf, "caddy.json", withApp("", f.state), 0o600)
	wantFinding(t, f.check("auth.hmac_replay_scope"), audit.SeverityWarn, "HMAC key ci", "server a with state dir "+other, "server b with state dir "+f.state)
}
