package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/clawguard/clawguard/internal/secretref"
)

// parsePairing parses
//
//	pairing off
//	pairing {
//	    auto_approve_local on|off
//	    pending_ttl <duration>
//	    require_device_signature [on|off]
//	    approvals {
//	        socket <path>
//	        identity_key <keyid> <secret>
//	    }
//	}
func (g *Gate) parsePairing(d *caddyfile.Dispenser) error {
	p := &Pairing{}
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return d.Errf("pairing: want 'off' or a block, got %s", secretref.Quote(d.Val()))
		}
		p.Off = true
		g.Pairing = p
		return nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "auto_approve_local":
			v, err := parseOnOff(d, "pairing auto_approve_local")
			if err != nil {
				return err
			}
			p.AutoApproveLocal = v
		case "pending_ttl":
			var val string
			if !d.AllArgs(&val) {
				return secretref.ArgErr(d, "pairing pending_ttl", "takes one duration")
			}
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur < minPendingTTL || dur > maxPendingTTL {
				return d.Errf("pairing pending_ttl: want a duration from %s to %s, got %q", minPendingTTL, maxPendingTTL, val)
			}
			p.PendingTTL = caddy.Duration(dur)
		case "require_device_signature":
			switch args := d.RemainingArgs(); {
			case len(args) == 0 || len(args) == 1 && args[0] == "on":
				p.RequireDeviceSignature = true
			case len(args) == 1 && args[0] == "off":
				p.RequireDeviceSignature = false
			default:
				return d.Errf("pairing require_device_signature: want on or off, got %q", args)
			}
		case "approvals":
			a, err := parseApprovals(d)
			if err != nil {
				return err
			}
			p.Approvals = a
		default:
			return d.Errf("unknown pairing option %s", secretref.Quote(opt))
		}
	}
	g.Pairing = p
	return nil
}

// parseAdmins parses `admins <identity>...`.
func (g *Gate) parseAdmins(d *caddyfile.Dispenser) error {
	ids := d.RemainingArgs()
	if len(ids) == 0 {
		return d.Err("admins: name at least one identity (e.g. user:alice)")
	}
	for _, id := range ids {
		if err := checkAdmin(id); err != nil {
			return d.Err(err.Error())
		}
	}
	g.Admins = append(g.Admins, ids...)
	return nil
}
