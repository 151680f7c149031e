package caddymodule

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/clawguard/clawguard/internal/testcaddy"
	cgtailnet "github.com/clawguard/clawguard/tsnet"
)

func TestTailnetIdentityCaddyfile(t *testing.T) {
	d, err := dispense("clawguard {\n tailnet_identity {\n allow_users alice@example.com bob@example.com\n allow_tags tag:ci\n allow_users *\n }\n}")
	if err != nil {
		t.Fatal(err)
	}
	var g Gate
	if err := g.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := cgtailnet.Policy{AllowUsers: []string{"alice@example.com", "bob@example.com", "*"}, AllowTags: []string{"tag:ci"}}
	if g.TailnetIdentity == nil || !slices.Equal(g.TailnetIdentity.AllowUsers, want.AllowUsers) || !slices.Equal(g.TailnetIdentity.AllowTags, want.AllowTags) {
		t.Fatalf("policy = %+v, want %+v", g.TailnetIdentity, want)
	}
	b, _ := json.Marshal(&g)
	if !strings.Contains(string(b), `"tailnet_identity":{"allow_users":["alice@example.com","bob@example.com","*"],"allow_tags":["tag:ci"]}`) {
		t.Errorf("JSON: %s", b)
	}

	for _, c := range []struct{ block, want string }{
		{"tailnet_identity", "allows nobody"},
		{"tailnet_identity {\n}", "allows nobody"},
		{"tailnet_identity alice {\n allow_users alice\n}", `want a block, got "alice"`},
		{"tailnet_identity {\n allow_users\n}", "allow_users: missing value"},
		{"tailnet_identity {\n allow_tags ci\n}", `allow_tags: "ci": want tag:<name> or *`},
		{"tailnet_identity {\n allow_users tag:ci\n}", "is a tag; list it under allow_tags"},
		{"tailnet_identity {\n allow_user alice\n}", `unknown tailnet_identity option "allow_user"`},
		{"tailnet_identity {\n allow_users a\n}\n tailnet_identity {\n allow_users b\n}", "given twice"},
	} {
		d, err := dispense("clawguard {\n " + c.block + "\n}")
		if err != nil {
			t.Fatal(err)
		}
		var g Gate
		err = g.UnmarshalCaddyfile(d)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("%q: error %v, want one with its line saying %q", c.block, err, c.want)
		}
	}
}

// TestTailnetIdentityJSONChecked: a JSON config skips the Caddyfile checks;
// Provision makes the same ones.
func TestTailnetIdentityJSONChecked(t *testing.T) {
	for _, p := range []string{`{}`, `{"allow_tags":["ci"]}`, `{"allow_users":["a b"]}`} {
		cfg := `{"admin":{"disabled":true},"apps":{"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[{"handler":"clawguard","state_dir":"` +
			jsonEscape(t.TempDir()) + `","tailnet_identity":` + p + `}]}]}}}}}`
		err := caddy.Load([]byte(cfg), true)
		if err == nil {
			testcaddy.Stop()
			t.Fatalf("tailnet_identity %s accepted", p)
		}
		if !strings.Contains(err.Error(), "tailnet_identity") {
			t.Errorf("tailnet_identity %s: error %v does not name the option", p, err)
		}
	}
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func TestTailnetTransportCaddyfile(t *testing.T) {
	d, err := dispense("clawguard_tailnet gate {\n identity_key gate1 {vault.sidecar_identity}\n dial_timeout 5s\n response_header_timeout 30s\n}")
	if err != nil {
		t.Fatal(err)
	}
	var tt TailnetTransport
	if err := tt.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if tt.Node != "gate" || tt.IdentityKeyID != "gate1" || tt.IdentityKey != "{vault.sidecar_identity}" ||
		time.Duration(tt.DialTimeout) != 5*time.Second || time.Duration(tt.ResponseHeaderTimeout) != 30*time.Second {
		t.Fatalf("parsed %+v", tt)
	}
	b, _ := json.Marshal(&tt)
	for _, want := range []string{`"node":"gate"`, `"identity_key_id":"gate1"`, `"dial_timeout":5000000000`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}

	for _, c := range []struct{ src, want string }{
		{"clawguard_tailnet {\n identity_key a {vault.k}\n}", "want the node to dial through"},
		{"clawguard_tailnet Gate {\n identity_key a {vault.k}\n}", "invalid node name"},
		{"clawguard_tailnet gate extra {\n identity_key a {vault.k}\n}", "wrong argument count"},
		{"clawguard_tailnet gate", "identity_key <keyid> <secret> is required"},
		{"clawguard_tailnet gate {\n dial_timeout 1s\n}", "identity_key <keyid> <secret> is required"},
		{"clawguard_tailnet gate {\n identity_key a short\n}", "identity_key a"},
	} {
		d, err := dispense(c.src)
		if err != nil {
			t.Fatal(err)
		}
		var tt TailnetTransport
		if err := tt.UnmarshalCaddyfile(d); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one saying %q", c.src, err, c.want)
		}
	}
}

// TestTailnetTransportRefusesDialerOptions: options of Caddy's own dialer
// would be silently lost on a tailnet node; the config is refused instead,
// naming them.
func TestTailnetTransportRefusesDialerOptions(t *testing.T) {
	t.Setenv("CLAWGUARD_TEST_IDENTITY_KEY", "0123456789abcdef0123456789abcdef-key")
	for _, c := range []struct{ opt, want string }{
		{"proxy_protocol v2", "proxy_protocol"},
		{"local_address 127.0.0.1", "local_address"},
		{"read_timeout 5s", "read_timeout/write_timeout"},
		{"versions h2c 2", "versions h2c and 3"},
		{"resolvers 1.1.1.1", "resolvers"},
	} {
		err := testcaddy.LoadErr(testcaddy.Global(testcaddy.FreePort(t)) + `
http://127.0.0.1:0 {
	clawguard {
		state_dir ` + t.TempDir() + `
	}
	reverse_proxy side:8443 {
		transport clawguard_tailnet gate {
			identity_key gate1 {env.CLAWGUARD_TEST_IDENTITY_KEY}
			` + c.opt + `
		}
	}
}
`)
		if err == nil {
			testcaddy.Stop()
			t.Fatalf("%s accepted", c.opt)
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "tailnet node") {
			t.Errorf("%s: error %v, want one naming %q", c.opt, err, c.want)
		}
	}
	if h := cgtailnet.Health(); len(h) != 0 {
		t.Errorf("a refused transport left nodes running: %+v", h)
	}
}

func FuzzTailnetTransportCaddyfile(f *testing.F) {
	for _, s := range []string{
		"clawguard_tailnet gate {\n identity_key a {vault.k}\n dial_timeout 3s\n}",
		"clawguard_tailnet gate {\n identity_key a 0123456789abcdef0123456789abcdef\n tls\n}",
		"clawguard_tailnet {\n identity_key a {vault.k}\n}",
		"clawguard_tailnet g x",
		"clawguard_tailnet g {\n {\n}\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		d, err := dispense(input)
		if err != nil {
			return
		}
		var tt TailnetTransport
		if err := tt.UnmarshalCaddyfile(d); err != nil {
			return
		}
		if cgtailnet.ValidNodeName(tt.Node) != nil || tt.IdentityKeyID == "" || tt.IdentityKey == "" {
			t.Fatalf("parsed an incomplete transport from %q: %+v", input, tt)
		}
		if _, err := json.Marshal(&tt); err != nil {
			t.Fatal(err)
		}
	})
}
