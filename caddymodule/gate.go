package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/clawguard/clawguard/authn"
	cgtailnet "github.com/clawguard/clawguard/tsnet"
)

func init() {
	caddy.RegisterModule(Gate{})
	httpcaddyfile.RegisterHandlerDirective("clawguard", parseCaddyfile)
	// Next to basic_auth: before handle, route and reverse_proxy, so a
	// `clawguard` block at the top of a site protects every route in it
	// without an `order` option.
	httpcaddyfile.RegisterDirectiveOrder("clawguard", httpcaddyfile.Before, "basic_auth")
}

// Gate is the `http.handlers.clawguard` handler: it authenticates every
// request before the routes behind it see it, and tells the upstream who the
// request is from in X-Clawguard-* headers and {http.auth.user.*}
// placeholders.
//
// Secrets (tokens) may be given as `{env.NAME}`, `{file./path}` or
// `{vault.NAME}` placeholders, resolved when the config loads; prefer these
// to literals, which Caddy's admin API would show in the config.
type Gate struct {
	// Tokens are shared gateway tokens accepted as `Authorization: Bearer`
	// (or the WebSocket subprotocol `bearer.<token>`). At least 16
	// characters each. Default: none.
	Tokens []string `json:"tokens,omitempty"`

	// Passwords are HTTP Basic users with bcrypt hashes, as written by
	// `htpasswd -B` or `caddy hash-password`. Default: none.
	Passwords []Password `json:"passwords,omitempty"`

	// TrustedProxies let reverse proxies at the given addresses assert the
	// user in a header. Default: none.
	TrustedProxies []TrustedProxy `json:"trusted_proxies,omitempty"`

	// LocalTrust lets requests from this machine in without credentials when
	// they come straight from a loopback peer, carry no proxy headers and no
	// foreign Origin. Default: true.
	LocalTrust *bool `json:"local_trust,omitempty"`

	// AllowedOrigins are browser origins (scheme://host[:port]) that count
	// as this host for local trust, besides the gate's own origin.
	// Default: none.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	// HMAC accepts RFC 9421 hmac-sha256 request signatures (see HMAC).
	// Default: off.
	HMAC *HMAC `json:"hmac,omitempty"`

	// RateLimit limits failed authentication attempts per client.
	// Default: 10 failures a minute, then a 5 minute lockout.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`

	// StateDir holds clawguard's state (the vault, paired devices).
	// Default: the clawguard app's state_dir, else $CLAWGUARD_STATE_DIR,
	// else $XDG_STATE_HOME/clawguard (/var/lib/clawguard as root).
	StateDir string `json:"state_dir,omitempty"`

	// Pairing configures device pairing and the admin API and UI under
	// /.clawguard/ (see Pairing). Default: on, with its defaults.
	Pairing *Pairing `json:"pairing,omitempty"`

	// TailnetIdentity lets peers that reach the gate over the tailnet (a
	// site bound to tailnet/<node>) in as themselves: their tailnet login or
	// tags decide (see tsnet.Policy), and upstreams see tailnet:<login> or
	// tailnet:tag:<tag>. Without it, tailnet requests need another
	// credential; they never get local trust either way. Default: none.
	TailnetIdentity *cgtailnet.Policy `json:"tailnet_identity,omitempty"`

	// Admins are identities besides local ones allowed to use the admin API
	// and UI (/.clawguard/api/, /.clawguard/ui/), as upstreams see them:
	// user:<name>, token:<name>, proxy:<user>, device:<id>, hmac:<keyid>,
	// tailnet:<login>. Default: none (local only).
	Admins []string `json:"admins,omitempty"`

	// AdminListen are the addresses of the admin listener, the only origin
	// that serves the admin UI and API (/.clawguard/ui/, /.clawguard/api/):
	// a loopback host:port, or tailnet/<node>:<port>. The gateway's own site
	// answers those paths with 404, so no page the upstream serves can reach
	// them. ["off"]: no admin listener. Several handlers of one config
	// leaving it unset share the default, which the first of them serves.
	// Default: 127.0.0.1:18788.
	AdminListen []string `json:"admin_listen,omitempty"`

	tokens     authn.TokenSet
	passwords  *authn.PasswordSet
	proxies    []*authn.TrustedProxy
	local      *authn.LocalPolicy
	localTrust bool
	limiter    *sharedLimiter
	limiterKey string
	site       string // the rate limiter's site: the server's listen addresses
	adminSite  string // the admin listener's
	metrics    *gateMetrics
	challenge  string // WWW-Authenticate value
	logger     *zap.Logger
	stateDir   string
	pairing    *gatePairing
	hmac       *gateHMAC

	// The admissions of the identities the config names (serve.go).
	tokenAdmissions []*admission          // by the token's index in tokens
	userAdmissions  map[string]*admission // by user
	hmacAdmissions  map[string]*admission // by keyid
	localAdmission  *admission
}

// Password is one HTTP Basic user.
type Password struct {
	// User is the user name (no ':' or spaces).
	User string `json:"user"`
	// Hash is the bcrypt hash, raw ($2y$…) or base64-encoded.
	Hash string `json:"hash"`
}

// TrustedProxy is a reverse proxy allowed to assert the user in a header.
type TrustedProxy struct {
	// CIDRs are the proxy's addresses (CIDRs or single IPs). Required.
	CIDRs []string `json:"cidrs"`
	// UserHeader carries the authenticated user name. Required.
	UserHeader string `json:"user_header"`
	// RequireHeaders must all be present and non-blank too (e.g. a shared
	// secret header the proxy adds). Default: none.
	RequireHeaders []string `json:"require_headers,omitempty"`
	// AllowUsers, if set, are the only users let in; others get 403.
	// Default: all users the proxy asserts.
	AllowUsers []string `json:"allow_users,omitempty"`
	// AllowLoopback lets a proxy on this host (loopback peer) assert users.
	// Default: false — with it, any local process can assert any user.
	AllowLoopback bool `json:"allow_loopback,omitempty"`
}

// RateLimit is the failed-attempt policy.
type RateLimit struct {
	// Off disables rate limiting. Default: false. `clawguard audit` flags it.
	Off bool `json:"off,omitempty"`
	// Attempts is how many failures within Window lock a client out.
	// Default: 10.
	Attempts int `json:"attempts,omitempty"`
	// Window is the period failures are counted over. Default: 1m.
	Window caddy.Duration `json:"window,omitempty"`
	// Lockout is how long a locked-out client gets 429. Default: 5m.
	Lockout caddy.Duration `json:"lockout,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Gate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.clawguard",
		New: func() caddy.Module { return new(Gate) },
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Gate)(nil)
	_ caddy.CleanerUpper          = (*Gate)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gate)(nil)
)
