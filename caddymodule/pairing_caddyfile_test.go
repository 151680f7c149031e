package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCaddyfilePairingOptions(t *testing.T) {
	good := []string{
		`clawguard {
			pairing {
				auto_approve_local off
				pending_ttl 10m
				require_device_signature
			}
			admins user:alice token:ops device:` + strings.Repeat("a", 64) + `
		}`,
		"clawguard {\n pairing off\n }",
		"clawguard {\n pairing {\n require_device_signature off\n }\n }",
	}
	for _, in := range good {
		var g Gate
		if err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
	}
	var g Gate
	g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(good[0]))
	b, _ := json.Marshal(g)
	if got := string(b); !strings.Contains(got, `"pairing":{"auto_approve_local":false,"pending_ttl":600000000000,"require_device_signature":true}`) ||
		!strings.Contains(got, `"admins":["user:alice","token:ops","device:`) {
		t.Fatalf("JSON %s", got)
	}

	bad := map[string]string{
		"pairing on":                                   "want 'off' or a block",
		"pairing {\n bogus 1\n }":                      `unknown pairing option "bogus"`,
		"pairing {\n pending_ttl 0s\n }":               "pending_ttl",
		"pairing {\n pending_ttl 48h\n }":              "pending_ttl",
		"pairing {\n auto_approve_local maybe\n }":     "want on or off",
		"pairing {\n require_device_signature yes\n }": "require_device_signature",
		"admins":       "at least one identity",
		"admins local": "local is always an admin",
		"admins alice": "not an identity",
	}
	for opt, want := range bad {
		var g Gate
		err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser("clawguard {\n" + opt + "\n}"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error mentioning %q", opt, err, want)
		}
	}
}
