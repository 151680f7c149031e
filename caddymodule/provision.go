package caddymodule

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/clawguard/clawguard/authn"
)

// Provision resolves secrets, compiles the configuration and attaches the
// shared state (metrics, rate limiter). Every error names the option.
func (g *Gate) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	app, err := loadApp(ctx)
	if err != nil {
		return fmt.Errorf("loading clawguard app: %w", err)
	}
	g.metrics = app.metrics
	g.stateDir = g.StateDir
	if g.stateDir == "" {
		g.stateDir = app.StateDir
	}
	sec := &secrets{stateDir: g.stateDir}

	for i, raw := range g.Tokens {
		value, name, err := sec.resolve(raw)
		if err != nil {
			return fmt.Errorf("token %d: %w", i+1, err)
		}
		if err := g.tokens.Add(name, value); err != nil {
			return fmt.Errorf("token %d: %w", i+1, err)
		}
	}

	g.passwords = authn.NewPasswordSet()
	for _, p := range g.Passwords {
		if err := g.passwords.Add(p.User, p.Hash); err != nil {
			return fmt.Errorf("password %s: %w", p.User, err)
		}
	}

	for i, tp := range g.TrustedProxies {
		rule, err := tp.compile()
		if err != nil {
			return fmt.Errorf("trusted_proxy %d: %w", i+1, err)
		}
		g.proxies = append(g.proxies, rule)
	}

	g.localTrust = g.LocalTrust == nil || *g.LocalTrust
	if g.local, err = authn.NewLocalPolicy(g.AllowedOrigins); err != nil {
		return fmt.Errorf("allowed_origins: %w", err)
	}
	// Only a proxy sends a trusted_proxy rule's headers: from a loopback
	// peer that is not the proxy, they mark a relayed request.
	for _, p := range g.proxies {
		g.local.AddRelayHeaders(p.UserHeader)
		g.local.AddRelayHeaders(p.RequireHeaders...)
	}
	g.site, g.adminSite = siteOf(ctx), "admin"

	if err := g.provisionHMAC(sec); err != nil {
		return err
	}

	if err := g.provisionTailnet(ctx); err != nil {
		return err
	}

	if err := g.provisionRateLimit(); err != nil {
		return err
	}
	if err := g.provisionPairing(ctx); err != nil {
		return err
	}
	if err := g.provisionAdminListen(app); err != nil {
		return err
	}
	g.challenge = g.wwwAuthenticate()
	g.provisionAdmissions()
	return nil
}

// siteOf names the gate's site for the rate limiter: the listen addresses of
// its server, so that lockouts on one site never block another's clients,
// and survive a reload that keeps the addresses.
func siteOf(ctx caddy.Context) string {
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		return strings.Join(srv.Listen, ",")
	}
	return ""
}

func (tp TrustedProxy) compile() (*authn.TrustedProxy, error) {
	rule := &authn.TrustedProxy{
		UserHeader:     tp.UserHeader,
		RequireHeaders: tp.RequireHeaders,
		AllowUsers:     tp.AllowUsers,
		AllowLoopback:  tp.AllowLoopback,
	}
	for _, c := range tp.CIDRs {
		p, err := authn.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		rule.Prefixes = append(rule.Prefixes, p)
	}
	return rule, rule.Validate()
}

func (g *Gate) provisionRateLimit() error {
	if g.RateLimit != nil && g.RateLimit.Off {
		return nil
	}
	cfg := authn.DefaultRateLimit
	if rl := g.RateLimit; rl != nil {
		if rl.Attempts < 0 || rl.Window < 0 || rl.Lockout < 0 {
			return fmt.Errorf("rate_limit: attempts, window and lockout must not be negative")
		}
		if rl.Attempts > 0 {
			cfg.Attempts = rl.Attempts
		}
		if rl.Window > 0 {
			cfg.Window = time.Duration(rl.Window)
		}
		if rl.Lockout > 0 {
			cfg.Lockout = time.Duration(rl.Lockout)
		}
	}
	g.limiterKey = fmt.Sprintf("clawguard-limiter/%d/%s/%s", cfg.Attempts, cfg.Window, cfg.Lockout)
	l, _, err := limiters.LoadOrNew(g.limiterKey, func() (caddy.Destructor, error) {
		return newSharedLimiter(cfg), nil
	})
	if err != nil {
		return fmt.Errorf("rate_limit: %w", err)
	}
	g.limiter = l.(*sharedLimiter)
	return nil
}

// wwwAuthenticate lists the schemes a client may use, for 401 responses.
func (g *Gate) wwwAuthenticate() string {
	var schemes []string
	// Paired devices present their cgd_ tokens as bearer tokens too.
	if g.tokens.Len() > 0 || g.pairing != nil {
		schemes = append(schemes, `Bearer realm="clawguard"`)
	}
	if g.passwords.Len() > 0 {
		schemes = append(schemes, `Basic realm="clawguard", charset="UTF-8"`)
	}
	if g.hmac != nil {
		// Not an IANA-registered scheme: it names RFC 9421 signatures for
		// people and tools reading the challenge.
		schemes = append(schemes, `Signature realm="clawguard", alg="hmac-sha256"`)
	}
	return strings.Join(schemes, ", ")
}

// Cleanup releases this config's reference to the shared rate limiter; the
// limiter (and its lockouts) survive a reload that keeps the same policy.
func (g *Gate) Cleanup() error {
	g.cleanupPairing()
	g.cleanupHMAC()
	if g.limiter != nil {
		_, err := limiters.Delete(g.limiterKey)
		return err
	}
	return nil
}
