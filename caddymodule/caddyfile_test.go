package caddymodule

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/clawguard/clawguard/internal/testcaddy"
)

func TestCaddyfileErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		name, block, want string
		line              int
	}{
		{"unknown option", "tokne abcdefghijklmnopqrstuvwx", `unknown clawguard option "tokne"`, 6},
		{"bad CIDR", "trusted_proxy 10.0.0.0/33 {\n\t\tuser_header X-User\n\t}", "bad CIDR", 6},
		{"malformed bcrypt hash", "password alice notahash", "malformed bcrypt hash", 6},
		{"trusted_proxy without user_header", "trusted_proxy 10.0.0.0/8 {\n\t\trequire_header X-A\n\t}", "needs user_header", 8},
		{"empty token", `token ""`, "empty", 6},
		{"token without value", "token", "missing value", 6},
		{"short token", "token abc", "too short", 6},
		{"trusted_proxy on loopback", "trusted_proxy 127.0.0.1 {\n\t\tuser_header X-User\n\t}", "allow_loopback", 8},
		{"bad origin", "allowed_origins evil.example", "bad origin", 6},
		{"bad local_trust", "local_trust maybe", "want on or off", 6},
		{"bad rate_limit", "rate_limit {\n\t\tattempts zero\n\t}", "positive integer", 7},
		{"tiny window", "rate_limit {\n\t\twindow 1ms\n\t}", "at least 1s", 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The option under test starts on line 6.
			cf := "{\n\tadmin off\n}\n:18789 {\n\tclawguard {\n\t\t" + c.block + "\n\t}\n\trespond ok\n}\n"
			_, err := testcaddy.Adapt(cf)
			if err == nil {
				t.Fatalf("accepted:\n%s", cf)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Fatalf("error %q does not name the file and line", err)
			}
			if !strings.Contains(err.Error(), "Caddyfile:"+strconv.Itoa(c.line)) {
				t.Fatalf("error %q does not name line %d", err, c.line)
			}
		})
	}
}

func TestCaddyfileRoundTrip(t *testing.T) {
	d := caddyfile.NewTestDispenser(`clawguard {
		token {vault.gateway_token} {env.SECOND_TOKEN}
		password alice $2y$05$kXdjiJmvVfGF.z6.3qwkv.yEzwv5i9zu5KPtwrESAINizOyetl7ze
		trusted_proxy 10.0.0.0/8 192.168.1.1 {
			user_header X-Remote-User
			require_header X-A X-B
			allow_users alice bob
		}
		local_trust off
		allowed_origins http://localhost:3000
		rate_limit {
			attempts 5
			window 30s
			lockout 10m
		}
		state_dir /var/lib/clawguard
	}`)
	var g Gate
	if err := g.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(g)
	want := `{"tokens":["{vault.gateway_token}","{env.SECOND_TOKEN}"],"passwords":[{"user":"alice","hash":"$2y$05$kXdjiJmvVfGF.z6.3qwkv.yEzwv5i9zu5KPtwrESAINizOyetl7ze"}],"trusted_proxies":[{"cidrs":["10.0.0.0/8","192.168.1.1"],"user_header":"X-Remote-User","require_headers":["X-A","X-B"],"allow_users":["alice","bob"]}],"local_trust":false,"allowed_origins":["http://localhost:3000"],"rate_limit":{"attempts":5,"window":30000000000,"lockout":600000000000},"state_dir":"/var/lib/clawguard"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestCaddyfileErrorsHideMisplacedSecrets: a secret on the wrong line or
// after its option's value is refused without being repeated, since config
// errors end up in logs.
func TestCaddyfileErrorsHideMisplacedSecrets(t *testing.T) {
	const secret = "Sup3rSecretTokenValue0123456789"
	type unmarshaler interface {
		UnmarshalCaddyfile(*caddyfile.Dispenser) error
	}
	for _, tc := range []struct {
		input string
		into  unmarshaler
	}{
		{"clawguard " + secret, &Gate{}},
		{"clawguard {\n token {env.A}\n " + secret + "\n}", &Gate{}},
		{"clawguard {\n state_dir /x " + secret + "\n}", &Gate{}},
		{"clawguard {\n local_trust on " + secret + "\n}", &Gate{}},
		{"clawguard {\n allowed_origins\n " + secret + "\n}", &Gate{}},
		{"clawguard {\n rate_limit off " + secret + "\n}", &Gate{}},
		{"clawguard {\n rate_limit {\n " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n rate_limit {\n attempts 3 " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n hmac ci {env.K} {\n " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n hmac ci {env.K} {\n max_age 1m " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n trusted_proxy 10.0.0.0/8 {\n " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n trusted_proxy 10.0.0.0/8 {\n allow_loopback " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n trusted_proxy 10.0.0.0/8 {\n user_header X " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n pairing " + secret + "\n}", &Gate{}},
		{"clawguard {\n pairing {\n " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n pairing {\n pending_ttl 5m " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n pairing {\n approvals " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n pairing {\n approvals {\n " + secret + "\n }\n }\n}", &Gate{}},
		{"clawguard {\n pairing {\n approvals {\n socket /s " + secret + "\n }\n }\n}", &Gate{}},
		{"clawguard {\n tailnet_identity {\n " + secret + "\n }\n}", &Gate{}},
		{"clawguard {\n tailnet_identity " + secret + "\n}", &Gate{}},
		{"clawguard_signed " + secret, &SignedTransport{}},
		{"clawguard_signed {\n state_dir /x " + secret + "\n}", &SignedTransport{}},
		{"clawguard_tailnet gate " + secret, &TailnetTransport{}},
		{"clawguard_tailnet " + secret + " {\n}", &TailnetTransport{}},
	} {
		d, err := dispense(tc.input)
		if err != nil {
			t.Fatal(err)
		}
		err = tc.into.UnmarshalCaddyfile(d)
		if err == nil {
			t.Errorf("%q: accepted", tc.input)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("%q: error repeats the secret: %v", tc.input, err)
		}
	}
}

func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, s := range []string{
		"clawguard {\n token abcdefghijklmnopqrstuvwx\n}",
		"clawguard {\n password a $2y$05$kXdjiJmvVfGF.z6.3qwkv.yEzwv5i9zu5KPtwrESAINizOyetl7ze\n}",
		"clawguard {\n trusted_proxy 10.0.0.0/8 {\n user_header X\n allow_loopback\n }\n}",
		"clawguard {\n rate_limit off\n}",
		"clawguard {\n rate_limit {\n attempts 3\n window 1m\n }\n local_trust on\n}",
		"clawguard {\n allowed_origins http://a:1 https://b\n state_dir /x\n}",
		"clawguard extra",
		"clawguard {\n {\n}",
		"clawguard {\n hmac ci {vault.k}\n}",
		"clawguard {\n hmac ci {env.K} {\n max_age 1m\n max_body 1MiB\n origin https://a.example:8443\n }\n hmac b base64:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n}",
		"clawguard {\n hmac ci 0123456789abcdef0123456789abcdef {\n max_age 5m\n }\n}",
		"clawguard {\n hmac a {x} {\n {\n }\n}",
		"clawguard {\n tailnet_identity {\n allow_users alice@example.com *\n allow_tags tag:ci *\n }\n}",
		"clawguard {\n tailnet_identity {\n allow_users tag:x\n }\n}",
		"clawguard {\n pairing {\n require_device_signature\n approvals {\n socket /run/s.sock\n }\n }\n admins user:a\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		var g Gate
		if err := g.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			if !strings.Contains(err.Error(), "Caddyfile:") && !strings.Contains(err.Error(), "wrong argument count") {
				t.Fatalf("error without location: %v", err)
			}
			return
		}
		// What parses must be valid: every value was checked at parse time.
		for _, tp := range g.TrustedProxies {
			if _, err := tp.compile(); err != nil {
				t.Fatalf("parsed an invalid trusted_proxy: %v", err)
			}
		}
		if g.HMAC != nil {
			if err := g.HMAC.check(); err != nil {
				t.Fatalf("parsed an invalid hmac config: %v", err)
			}
		}
		if p := g.TailnetIdentity; p != nil {
			if err := p.Validate(); err != nil {
				t.Fatalf("parsed an invalid tailnet_identity: %v", err)
			}
		}
		if _, err := json.Marshal(g); err != nil {
			t.Fatal(err)
		}
	})
}
