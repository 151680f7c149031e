package caddymodule

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/clawguard/clawguard/caddymodule/authn"
	"github.com/clawguard/clawguard/caddymodule/pairing"
	cgtailnet "github.com/clawguard/clawguard/tsnet"
)

// outcome is the result of authenticating one request.
type outcome int

const (
	authOK        outcome = iota
	authMissing           // no credential presented: 401
	authFailed            // a credential was presented and is wrong: 401, counts toward the rate limit
	authForbidden         // authenticated, but not allowed: 403
	authRefused           // refused for something other than the credential (verdict.status): not counted toward the rate limit
)

// verdict is what authenticate decided.
type verdict struct {
	outcome outcome
	id      authn.Identity
	method  authn.Method // the method attempted, for metrics
	code    string       // error code for refusals
	msg     string       // client-facing message for refusals
	status  int          // HTTP status of an authRefused verdict
	cred    authn.Credential
}

// ServeHTTP authenticates the request and passes it on with the identity
// headers set, or refuses it.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Nothing a client sends may look like an identity the gate set.
	authn.StripIdentityHeaders(r.Header)
	peer := peerAddr(r)
	g.stripUntrustedProxyHeaders(r.Header, peer)

	if param := authn.CredentialInURL(r.URL); param != "" {
		return g.refuse(w, r, http.StatusUnauthorized, "credentials_in_url",
			"credentials are not accepted in the URL (query parameter "+strconv.Quote(param)+"); send them in the Authorization header")
	}

	now := time.Now()
	var limitKey string
	if g.limiter != nil {
		limitKey = authn.ClientKey(clientAddr(r, peer), g.local.ForeignOrigin(r))
		if locked, retry := g.limiter.Locked(limitKey, now); locked {
			return g.tooMany(w, r, retry)
		}
	}

	// The gate answers /.clawguard/* itself: the pairing protocol without
	// credentials, the admin API and UI after authentication (pairing.go).
	if isOpenPath(r) {
		return g.serveOpen(w, r, peer)
	}

	v := g.authenticate(r, peer)
	switch v.outcome {
	case authOK:
		g.metrics.attempt(v.method, true)
		if pairing.IsAdminPath(r.URL.Path) {
			return g.serveAdmin(w, r, v, peer)
		}
		if v.id.Method == authn.MethodDevice {
			var done func()
			w, r, done = g.trackDevice(w, r, v)
			defer done()
		}
		g.admit(r, v)
		return next.ServeHTTP(w, r)
	case authForbidden:
		g.metrics.attempt(v.method, false)
		return g.refuse(w, r, http.StatusForbidden, v.code, v.msg)
	case authRefused:
		g.metrics.attempt(v.method, false)
		return g.refuse(w, r, v.status, v.code, v.msg)
	case authFailed:
		g.metrics.attempt(v.method, false)
		if g.limiter != nil {
			// The failure that reaches the limit is still answered 401; the
			// lockout applies from the next request.
			g.limiter.Fail(limitKey, now)
		}
		return g.unauthorized(w, r, v.code, v.msg)
	default:
		g.metrics.attempt("", false)
		return g.unauthorized(w, r, "unauthenticated", "authentication required")
	}
}

// authenticate applies the methods in a fixed order: a trusted proxy's
// assertion, then presented credentials, then tailnet identity for requests
// over the tailnet (never local trust for those), then local trust. A presented
// credential that is wrong fails the request even from loopback, so a client
// never silently runs as someone other than it claimed to be.
func (g *Gate) authenticate(r *http.Request, peer netip.Addr) verdict {
	for _, p := range g.proxies {
		if !p.Trusts(peer) {
			continue
		}
		user, o := p.Assert(r.Header)
		switch o {
		case authn.ProxyAccepted:
			return verdict{outcome: authOK, method: authn.MethodProxy, id: authn.Identity{Method: authn.MethodProxy, Name: user}}
		case authn.ProxyForbidden:
			return verdict{outcome: authForbidden, method: authn.MethodProxy, code: "forbidden", msg: "user not allowed"}
		case authn.ProxyIncomplete:
			return verdict{outcome: authFailed, method: authn.MethodProxy, code: "invalid_credentials", msg: "invalid credentials"}
		}
	}

	cred, problem := authn.ParseCredential(r.Header)
	if problem != "" {
		return verdict{outcome: authFailed, code: "malformed_credentials", msg: problem}
	}
	switch cred.Scheme {
	case "bearer":
		if pairing.IsDeviceToken(cred.Token) {
			return g.authenticateDevice(r, cred, peer)
		}
		if name, ok := g.tokens.Match(cred.Token); ok {
			return verdict{outcome: authOK, method: authn.MethodToken, cred: cred, id: authn.Identity{Method: authn.MethodToken, Name: name}}
		}
		return verdict{outcome: authFailed, method: authn.MethodToken, code: "invalid_credentials", msg: "invalid credentials"}
	case "basic":
		if g.passwords.Verify(cred.User, cred.Password) {
			return verdict{outcome: authOK, method: authn.MethodPassword, cred: cred, id: authn.Identity{Method: authn.MethodPassword, Name: cred.User}}
		}
		return verdict{outcome: authFailed, method: authn.MethodPassword, code: "invalid_credentials", msg: "invalid credentials"}
	}
	// A signature without an Authorization header is the HMAC credential.
	if g.hmac != nil && hasSignature(r.Header) {
		return g.authenticateHMAC(r)
	}

	if cgtailnet.OverTailnet(r) {
		return g.authenticateTailnet(r)
	}
	if g.localTrust {
		if ok, why := g.local.IsLocal(r, peer); ok {
			return verdict{outcome: authOK, method: authn.MethodLocal, id: authn.Identity{Method: authn.MethodLocal}}
		} else if c := g.logger.Check(zap.DebugLevel, "not local"); c != nil {
			c.Write(zap.String("reason", why), zap.String("remote", r.RemoteAddr))
		}
	}
	return verdict{outcome: authMissing}
}

// admit hands the request on: the identity in headers and placeholders, the
// consumed credential removed so it never reaches the upstream.
func (g *Gate) admit(r *http.Request, v verdict) {
	authn.SetIdentityHeaders(r.Header, v.id)
	caddyhttp.SetVar(r.Context(), gateIdentityVar, v.id) // for the clawguard_signed transport
	switch {
	case v.cred.FromSubprotocol:
		authn.StripSubprotocolToken(r.Header)
	case v.cred.Scheme != "":
		r.Header.Del("Authorization")
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", v.id.String())
	repl.Set("http.auth.user.method", string(v.id.Method))
	repl.Set("http.auth.user.name", v.id.Name)
}

// stripUntrustedProxyHeaders removes the user headers of trusted_proxy rules
// unless the peer is that proxy, so the upstream never sees an assertion the
// gate did not accept.
func (g *Gate) stripUntrustedProxyHeaders(h http.Header, peer netip.Addr) {
	for _, p := range g.proxies {
		if !p.Trusts(peer) {
			h.Del(p.UserHeader)
		}
	}
}

// peerAddr is the TCP peer of the request; over the tailnet, the peer's
// tailnet address as the node saw it, which no listener wrapper changes.
func peerAddr(r *http.Request) netip.Addr {
	if ap, ok := cgtailnet.RemoteAddr(r); ok {
		return ap.Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// clientAddr is the client as Caddy determined it (honouring the server's
// trusted_proxies), which the rate limiter keys on. A tailnet peer is its
// tailnet address, whatever headers or PROXY lines it sent.
func clientAddr(r *http.Request, peer netip.Addr) netip.Addr {
	if cgtailnet.OverTailnet(r) {
		return peer
	}
	if s, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap()
		}
	}
	return peer
}
