package caddymodule

import (
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/internal/secretref"
)

// parseHMAC parses one key, repeatable for rotation:
//
//	hmac <keyid> <secret> {
//	    max_age <duration>
//	    max_body <size>
//	    origin <scheme://host[:port]>
//	}
//
// The block is optional. Its options apply to every hmac key of the gate
// (one replay window), so two lines may not give them different values. A
// literal secret is checked here; a placeholder when the config loads.
func (g *Gate) parseHMAC(d *caddyfile.Dispenser) error {
	var k HMACKey
	if !d.AllArgs(&k.KeyID, &k.Secret) {
		return d.Err("hmac: want <keyid> <secret> (the secret as {vault.NAME} or {env.NAME} rather than a literal)")
	}
	if err := checkKeyID(k.KeyID); err != nil {
		return d.Err(err.Error())
	}
	if !strings.Contains(k.Secret, "{") {
		if _, err := httpsig.ParseKey([]byte(k.Secret)); err != nil {
			return d.Errf("hmac %s: %v", k.KeyID, err)
		}
	}
	h := g.HMAC
	if h == nil {
		h = &HMAC{}
	}
	for _, prev := range h.Keys {
		if prev.KeyID == k.KeyID {
			return d.Errf("hmac %s: keyid listed twice", k.KeyID)
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var val string
		if !d.AllArgs(&val) {
			return secretref.ArgErr(d, "hmac "+secretref.Quote(opt), "takes one value")
		}
		switch opt {
		case "max_age":
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur < minHMACMaxAge || dur > maxHMACMaxAge {
				return d.Errf("hmac max_age: want a duration from %s to %s, got %q", minHMACMaxAge, maxHMACMaxAge, val)
			}
			if h.MaxAge != 0 && time.Duration(h.MaxAge) != dur {
				return d.Errf("hmac max_age: %s differs from the %s an earlier hmac key set; it applies to every key of the gate", dur, time.Duration(h.MaxAge))
			}
			h.MaxAge = caddy.Duration(dur)
		case "max_body":
			n, err := humanize.ParseBytes(val)
			if err != nil || n < 1 || n > maxHMACBody {
				return d.Errf("hmac max_body: want a size from 1B to 1GiB (e.g. 10MiB), got %q", val)
			}
			if h.MaxBody != 0 && h.MaxBody != int64(n) {
				return d.Errf("hmac max_body: %d bytes differs from the %d an earlier hmac key set; it applies to every key of the gate", n, h.MaxBody)
			}
			h.MaxBody = int64(n)
		case "origin":
			if _, _, err := parseOrigin(val); err != nil {
				return d.Err(err.Error())
			}
			if h.Origin != "" && h.Origin != val {
				return d.Errf("hmac origin: %q differs from the %q an earlier hmac key set; it applies to every key of the gate", val, h.Origin)
			}
			h.Origin = val
		default:
			return d.Errf("unknown hmac option %s", secretref.Quote(opt))
		}
	}
	h.Keys = append(h.Keys, k)
	g.HMAC = h
	return nil
}
