package caddymodule

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/internal/secretref"
)

// UnmarshalCaddyfile sets up the transport from Caddyfile tokens:
//
//	transport clawguard_signed {
//	    identity_key <keyid> <secret>
//	    state_dir <path>
//	    <any option of transport http>
//	}
//
// Its own options are taken out; every other line is handed, tokens and
// line numbers intact, to the http transport's parser.
func (t *SignedTransport) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // transport name
	line := d.Line()
	rest := []caddyfile.Token{d.Token()}
	if d.NextArg() {
		return secretref.ArgErr(d, "clawguard_signed", "takes a block, no arguments")
	}
	opened := false
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if !opened {
			// Keep the opening brace (NextBlock consumed it).
			d.Prev()
			rest = append(rest, d.Token())
			d.Next()
			opened = true
		}
		switch d.Val() {
		case "identity_key":
			if t.IdentityKeyID != "" {
				return d.Err("clawguard_signed: identity_key given twice")
			}
			if !d.AllArgs(&t.IdentityKeyID, &t.IdentityKey) {
				return d.Err("clawguard_signed: want identity_key <keyid> <secret> (the secret as {vault.NAME} or {env.NAME})")
			}
			if !strings.Contains(t.IdentityKey, "{") {
				if _, err := httpsig.ParseKey([]byte(t.IdentityKey)); err != nil {
					return d.Errf("clawguard_signed identity_key %s: %v", t.IdentityKeyID, err)
				}
			}
		case "state_dir":
			if !d.AllArgs(&t.StateDir) {
				return secretref.ArgErr(d, "clawguard_signed state_dir", "takes one path")
			}
		default:
			rest = append(rest, d.NextSegment()...)
		}
	}
	if opened {
		rest = append(rest, d.Token()) // closing brace
	}
	if t.IdentityKeyID == "" {
		return d.Errf("clawguard_signed (line %d): identity_key <keyid> <secret> is required", line)
	}
	return t.HTTPTransport.UnmarshalCaddyfile(caddyfile.NewDispenser(rest))
}

// Interface guard
var _ caddyfile.Unmarshaler = (*SignedTransport)(nil)
