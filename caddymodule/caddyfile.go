package caddymodule

import (
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/internal/secretref"
)

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	g := new(Gate)
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return g, err
}

// UnmarshalCaddyfile sets up the gate from Caddyfile tokens. Syntax:
//
//	clawguard [<matcher>] {
//	    token <secret>...
//	    password <user> <bcrypt-hash>
//	    trusted_proxy <cidr>... {
//	        user_header <header>
//	        require_header <header>...
//	        allow_users <user>...
//	        allow_loopback
//	    }
//	    hmac <keyid> <secret> {
//	        max_age <duration>
//	        max_body <size>
//	        origin <scheme://host[:port]>
//	    }
//	    local_trust on|off
//	    allowed_origins <origin>...
//	    rate_limit off | {
//	        attempts <n>
//	        window <duration>
//	        lockout <duration>
//	    }
//	    state_dir <path>
//	    pairing off | {
//	        auto_approve_local on|off
//	        pending_ttl <duration>
//	        require_device_signature [on|off]
//	    }
//	    tailnet_identity {
//	        allow_users <login>...
//	        allow_tags <tag:name>...
//	    }
//	    admins <identity>...
//	    admin_listen <address>... | off
//	}
//
// Values are checked here where they can be, so a mistake is reported with
// its Caddyfile line.
func (g *Gate) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return secretref.ArgErr(d, "clawguard", "takes a block, no arguments")
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "token":
			err = g.parseToken(d)
		case "password":
			err = g.parsePassword(d)
		case "trusted_proxy":
			err = g.parseTrustedProxy(d)
		case "local_trust":
			g.LocalTrust, err = parseOnOff(d, "local_trust")
		case "allowed_origins":
			err = g.parseOrigins(d)
		case "hmac":
			err = g.parseHMAC(d)
		case "rate_limit":
			err = g.parseRateLimit(d)
		case "pairing":
			err = g.parsePairing(d)
		case "tailnet_identity":
			err = g.parseTailnetIdentity(d)
		case "admins":
			err = g.parseAdmins(d)
		case "admin_listen":
			err = g.parseAdminListen(d)
		case "state_dir":
			if !d.AllArgs(&g.StateDir) {
				err = secretref.ArgErr(d, "state_dir", "takes one path")
			}
		default:
			err = d.Errf("unknown clawguard option %s", secretref.Quote(d.Val()))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (g *Gate) parseAdminListen(d *caddyfile.Dispenser) error {
	if g.AdminListen != nil {
		return d.Err("admin_listen: given twice")
	}
	var err error
	g.AdminListen, err = parseAdminListenArgs(d)
	return err
}

func (g *Gate) parseToken(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Err("token: missing value (use {vault.NAME} or {env.NAME} rather than a literal)")
	}
	for _, t := range args {
		if strings.TrimSpace(t) == "" {
			return d.Err("token: empty value")
		}
		if !strings.Contains(t, "{") && len(t) < authn.MinTokenLength {
			return d.Errf("token: too short (%d characters; at least %d, 24 or more recommended)", len(t), authn.MinTokenLength)
		}
	}
	g.Tokens = append(g.Tokens, args...)
	return nil
}

func (g *Gate) parsePassword(d *caddyfile.Dispenser) error {
	var p Password
	if !d.AllArgs(&p.User, &p.Hash) {
		return d.Err("password: want <user> <bcrypt-hash>")
	}
	if _, err := authn.ParseBcryptHash(p.Hash); err != nil {
		return d.Errf("password %s: %v", p.User, err)
	}
	g.Passwords = append(g.Passwords, p)
	return nil
}

func (g *Gate) parseTrustedProxy(d *caddyfile.Dispenser) error {
	var tp TrustedProxy
	line := d.Line()
	tp.CIDRs = d.RemainingArgs()
	if len(tp.CIDRs) == 0 {
		return d.Err("trusted_proxy: missing CIDRs")
	}
	for _, c := range tp.CIDRs {
		if _, err := authn.ParsePrefix(c); err != nil {
			return d.Errf("trusted_proxy: %v", err)
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "user_header":
			if !d.AllArgs(&tp.UserHeader) {
				return secretref.ArgErr(d, "trusted_proxy user_header", "takes one header name")
			}
		case "require_header":
			hs := d.RemainingArgs()
			if len(hs) == 0 {
				return secretref.ArgErr(d, "trusted_proxy require_header", "takes one or more header names")
			}
			tp.RequireHeaders = append(tp.RequireHeaders, hs...)
		case "allow_users":
			us := d.RemainingArgs()
			if len(us) == 0 {
				return secretref.ArgErr(d, "trusted_proxy allow_users", "takes one or more users")
			}
			tp.AllowUsers = append(tp.AllowUsers, us...)
		case "allow_loopback":
			if d.NextArg() {
				return secretref.ArgErr(d, "trusted_proxy allow_loopback", "takes no value")
			}
			tp.AllowLoopback = true
		default:
			return d.Errf("unknown trusted_proxy option %s", secretref.Quote(d.Val()))
		}
	}
	if _, err := tp.compile(); err != nil {
		return d.Errf("trusted_proxy (line %d): %v", line, err)
	}
	g.TrustedProxies = append(g.TrustedProxies, tp)
	return nil
}

func (g *Gate) parseOrigins(d *caddyfile.Dispenser) error {
	origins := d.RemainingArgs()
	if len(origins) == 0 {
		return secretref.ArgErr(d, "allowed_origins", "takes one or more origins")
	}
	for _, o := range origins {
		if _, err := authn.NormalizeOrigin(o); err != nil {
			return d.Errf("allowed_origins: %v", err)
		}
	}
	g.AllowedOrigins = append(g.AllowedOrigins, origins...)
	return nil
}

func (g *Gate) parseRateLimit(d *caddyfile.Dispenser) error {
	rl := &RateLimit{}
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return d.Errf("rate_limit: want 'off' or a block, got %s", secretref.Quote(d.Val()))
		}
		rl.Off = true
		g.RateLimit = rl
		return nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var val string
		if !d.AllArgs(&val) {
			return secretref.ArgErr(d, "rate_limit "+secretref.Quote(opt), "takes one value")
		}
		switch opt {
		case "attempts":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return d.Errf("rate_limit attempts: want a positive integer, got %q", val)
			}
			rl.Attempts = n
		case "window", "lockout":
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur < time.Second {
				return d.Errf("rate_limit %s: want a duration of at least 1s, got %q", opt, val)
			}
			if opt == "window" {
				rl.Window = caddy.Duration(dur)
			} else {
				rl.Lockout = caddy.Duration(dur)
			}
		default:
			return d.Errf("unknown rate_limit option %s", secretref.Quote(opt))
		}
	}
	g.RateLimit = rl
	return nil
}

func parseOnOff(d *caddyfile.Dispenser, opt string) (*bool, error) {
	var v string
	if !d.AllArgs(&v) {
		return nil, secretref.ArgErr(d, opt, "takes on or off")
	}
	switch v {
	case "on":
		return new(true), nil
	case "off":
		return new(false), nil
	}
	return nil, d.Errf("%s: want on or off, got %q", opt, v)
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Gate)(nil)
