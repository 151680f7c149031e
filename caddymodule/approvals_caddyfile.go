package caddymodule

import (
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/internal/secretref"
)

// parseApprovals parses the pairing block's
//
//	approvals {
//	    socket <path>
//	    identity_key <keyid> <secret>
//	}
func parseApprovals(d *caddyfile.Dispenser) (*Approvals, error) {
	a := &Approvals{}
	if d.NextArg() {
		return nil, secretref.ArgErr(d, "pairing approvals", "takes a block, no arguments")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "socket":
			if !d.AllArgs(&a.Socket) {
				return nil, secretref.ArgErr(d, "pairing approvals socket", "takes one path")
			}
			if !filepath.IsAbs(a.Socket) {
				return nil, d.Errf("pairing approvals socket: %q is not an absolute path", a.Socket)
			}
		case "identity_key":
			if !d.AllArgs(&a.IdentityKeyID, &a.IdentityKey) {
				return nil, d.Err("pairing approvals: want identity_key <keyid> <secret> (the secret as {vault.NAME} or {env.NAME})")
			}
			if !strings.Contains(a.IdentityKey, "{") {
				if _, err := httpsig.ParseKey([]byte(a.IdentityKey)); err != nil {
					return nil, d.Errf("pairing approvals identity_key %s: %v", a.IdentityKeyID, err)
				}
			}
		default:
			return nil, d.Errf("unknown pairing approvals option %s", secretref.Quote(opt))
		}
	}
	return a, nil
}
