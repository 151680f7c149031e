package caddymodule

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/pairing"
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
	adm     *admission // id's precomputed admission, when the config names id
}

// admission is what admit hands on for one identity, prepared once: at
// provision for the identities the config names (tokens, users, HMAC keys,
// local), per request for the others (devices, proxies, tailnet logins).
// Its values are immutable and shared by every request of the identity;
// the header slices are not (see authn.SetIdentityHeaderValues).
type admission struct {
	id       authn.Identity
	header   string // id.String(): X-Clawguard-Identity
	idVar    any    // id, boxed once, for gateIdentityVar
	userID   any    // {http.auth.user.id}: id.String()
	method   any    // {http.auth.user.method}
	userName any    // {http.auth.user.name}
}

func newAdmission(id authn.Identity) *admission {
	s := id.String()
	return &admission{id: id, header: s, idVar: id, userID: s, method: string(id.Method), userName: id.Name}
}

// facts are what the gate determines about a request once, before it strips
// anything from it; every later step reads them.
type facts struct {
	peer    netip.Addr     // the TCP peer (over the tailnet, the tailnet peer)
	client  netip.Addr     // the client as Caddy determined it (trusted_proxies)
	tailnet bool           // arrived over the tailnet
	relayed bool           // a loopback peer carrying proxy or client-IP headers
	foreign bool           // a browser page of a foreign origin
	local   bool           // qualifies for local trust (with local_trust on)
	whyNot  string         // why a loopback request is not local, for logs
	vars    map[string]any // Caddy's request variables, looked up once
}

// class is the rate limiter's class of the client.
func (f *facts) class() authn.Class {
	switch {
	case f.foreign:
		return authn.ClassForeign
	case f.relayed:
		return authn.ClassRelayed
	case f.local:
		return authn.ClassLocal
	}
	return authn.ClassDirect
}

// begin determines the request's facts and then removes what a client may
// not send: identity headers of the gate's own, and trusted_proxy headers
// from peers that are not that proxy. Relay headers are judged before they
// are stripped, so a loopback peer that sent a proxy's user header is a
// relayed request, never a local one.
func (g *Gate) begin(r *http.Request) facts {
	var f facts
	f.vars, _ = r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any)
	if ap, ok := cgtailnet.RemoteAddr(r); ok {
		f.peer, f.tailnet = ap.Addr().Unmap(), true
		f.client = f.peer
	} else {
		f.peer = peerAddr(r.RemoteAddr)
		f.client = f.peer
		if s, ok := f.vars[caddyhttp.ClientIPVarKey].(string); ok && !(f.peer.IsValid() && isHostOf(s, r.RemoteAddr)) {
			// Caddy's trusted_proxies named another client. Without them
			// Caddy's client_ip is the peer's host, which is not parsed
			// again: a RemoteAddr that parsed has one colon outside
			// brackets, so a host it starts with is the peer's.
			if a, err := netip.ParseAddr(s); err == nil {
				f.client = a.Unmap()
			}
		}
	}
	f.foreign = g.local.ForeignOrigin(r)
	if f.peer.IsLoopback() && !f.tailnet {
		f.relayed = g.local.Relayed(r.Header)
		if g.localTrust {
			f.local, f.whyNot = g.local.IsLocal(r, f.peer)
		}
	}
	authn.StripIdentityHeaders(r.Header)
	g.stripUntrustedProxyHeaders(r.Header, f.peer)
	return f
}

// ServeHTTP authenticates the request and passes it on with the identity
// headers set, or refuses it. Every spelling of /.clawguard/ is answered
// here: the pairing protocol, or 404 (the admin API and UI live on the
// admin listener, see admin_listener.go).
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	f := g.begin(r)
	if param := credentialInURL(r); param != "" {
		return g.refuseCredentialInURL(w, r, param)
	}
	if pairing.Reserved(r.URL.Path) {
		return g.serveReserved(w, r, &f)
	}
	v, answered := g.authorize(w, r, &f, g.site)
	if answered {
		return nil
	}
	if v.id.Method == authn.MethodDevice {
		var done func()
		w, r, done = g.trackDevice(w, r, v)
		defer done()
	}
	g.admit(r, v, &f)
	return next.ServeHTTP(w, r)
}

func credentialInURL(r *http.Request) string { return authn.CredentialInURL(r.URL) }

func (g *Gate) refuseCredentialInURL(w http.ResponseWriter, r *http.Request, param string) error {
	return g.refuse(w, r, http.StatusUnauthorized, "credentials_in_url",
		"credentials are not accepted in the URL (query parameter "+strconv.Quote(param)+"); send them in the Authorization header")
}

// authorize authenticates r on site and writes the refusal if there is
// one; answered reports that it did.
//
// Rate limiting: failures count under the client's LimitKey (site, class,
// address). A lockout blocks the guessable credentials its client presents
// (shared tokens, passwords, a trusted proxy's assertions, malformed
// credentials) without checking them. It never blocks what cannot be
// guessed: requests without a credential (local trust, tailnet identity)
// and device tokens and HMAC signatures (256-bit secrets), which are still
// checked, a wrong one still counting as a failure.
func (g *Gate) authorize(w http.ResponseWriter, r *http.Request, f *facts, site string) (v verdict, answered bool) {
	cred, problem := authn.ParseCredential(r.Header)
	var key authn.LimitKey
	var now time.Time
	if g.limiter != nil {
		key, now = authn.Key(site, f.class(), f.client), time.Now()
		if g.guessable(cred, problem, f) {
			if locked, retry := g.limiter.Locked(key, now); locked {
				g.tooMany(w, r, retry)
				return v, true
			}
		}
	}
	v = g.authenticate(r, f, cred, problem)
	switch v.outcome {
	case authOK:
		g.metrics.attempt(v.method, true)
		return v, false
	case authForbidden:
		g.metrics.attempt(v.method, false)
		g.refuse(w, r, http.StatusForbidden, v.code, v.msg)
	case authRefused:
		g.metrics.attempt(v.method, false)
		g.refuse(w, r, v.status, v.code, v.msg)
	case authFailed:
		g.metrics.attempt(v.method, false)
		if g.limiter != nil {
			// The failure that reaches the limit is still answered 401; the
			// lockout applies from the next request.
			g.limiter.Fail(key, now)
		}
		g.unauthorized(w, r, v.code, v.msg)
	default:
		g.metrics.attempt("", false)
		g.unauthorized(w, r, "unauthenticated", "authentication required")
	}
	return v, true
}

// guessable reports whether what r presents could be guessed, and so is
// not even checked during a lockout (see authorize).
func (g *Gate) guessable(cred authn.Credential, problem string, f *facts) bool {
	switch {
	case problem != "", cred.Scheme == "basic":
		return true
	case cred.Scheme == "bearer":
		return !pairing.IsDeviceToken(cred.Token)
	}
	for _, p := range g.proxies {
		if p.Trusts(f.peer) {
			return true
		}
	}
	return false
}

// authenticate applies the methods in a fixed order: a trusted proxy's
// assertion, then presented credentials, then tailnet identity for requests
// over the tailnet (never local trust for those), then local trust. A presented
// credential that is wrong fails the request even from loopback, so a client
// never silently runs as someone other than it claimed to be.
func (g *Gate) authenticate(r *http.Request, f *facts, cred authn.Credential, problem string) verdict {
	for _, p := range g.proxies {
		if !p.Trusts(f.peer) {
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

	if problem != "" {
		return verdict{outcome: authFailed, code: "malformed_credentials", msg: problem}
	}
	switch cred.Scheme {
	case "bearer":
		if pairing.IsDeviceToken(cred.Token) {
			return g.authenticateDevice(r, cred, f)
		}
		if i, ok := g.tokens.MatchIndex(cred.Token); ok {
			a := g.tokenAdmissions[i]
			return verdict{outcome: authOK, method: authn.MethodToken, cred: cred, id: a.id, adm: a}
		}
		return verdict{outcome: authFailed, method: authn.MethodToken, code: "invalid_credentials", msg: "invalid credentials"}
	case "basic":
		if err := g.passwords.Check(cred.User, cred.Password); errors.Is(err, authn.ErrPasswordTooLong) {
			return verdict{outcome: authFailed, method: authn.MethodPassword, code: "password_too_long", msg: err.Error()}
		} else if err == nil {
			return verdict{outcome: authOK, method: authn.MethodPassword, cred: cred,
				id: authn.Identity{Method: authn.MethodPassword, Name: cred.User}, adm: g.userAdmissions[cred.User]}
		}
		return verdict{outcome: authFailed, method: authn.MethodPassword, code: "invalid_credentials", msg: "invalid credentials"}
	}
	// A signature without an Authorization header is the HMAC credential.
	if g.hmac != nil && hasSignature(r.Header) {
		return g.authenticateHMAC(r)
	}

	if f.tailnet {
		return g.authenticateTailnet(r)
	}
	if f.local {
		return verdict{outcome: authOK, method: authn.MethodLocal, id: g.localAdmission.id, adm: g.localAdmission}
	}
	if f.whyNot != "" {
		if c := g.logger.Check(zap.DebugLevel, "not local"); c != nil {
			c.Write(zap.String("reason", f.whyNot), zap.String("remote", r.RemoteAddr))
		}
	}
	return verdict{outcome: authMissing}
}

// admit hands the request on: the identity in headers and placeholders, the
// consumed credential removed so it never reaches the upstream. For an
// identity the config names, every value was prepared at provision: the
// request costs one allocation (the identity headers' values).
func (g *Gate) admit(r *http.Request, v verdict, f *facts) {
	a := v.adm
	if a == nil && v.id.Method == authn.MethodHMAC {
		a = g.hmacAdmissions[v.id.Name]
	}
	if a == nil || a.id != v.id {
		a = newAdmission(v.id)
	}
	device := ""
	if a.id.Method == authn.MethodDevice {
		device = a.id.Name
	}
	authn.SetIdentityHeaderValues(r.Header, a.header, string(a.id.Method), device)
	if f.vars != nil {
		f.vars[gateIdentityVar] = a.idVar // for the clawguard_signed transport
	}
	switch {
	case v.cred.FromSubprotocol:
		authn.StripSubprotocolToken(r.Header)
	case v.cred.Scheme != "":
		delete(r.Header, "Authorization")
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", a.userID)
	repl.Set("http.auth.user.method", a.method)
	repl.Set("http.auth.user.name", a.userName)
}

// provisionAdmissions prepares the admissions of the identities the config
// names: every token, user and HMAC key, and local trust.
func (g *Gate) provisionAdmissions() {
	g.tokenAdmissions = make([]*admission, g.tokens.Len())
	for i := range g.tokenAdmissions {
		g.tokenAdmissions[i] = newAdmission(authn.Identity{Method: authn.MethodToken, Name: g.tokens.Name(i)})
	}
	g.userAdmissions = make(map[string]*admission, len(g.Passwords))
	for _, p := range g.Passwords {
		g.userAdmissions[p.User] = newAdmission(authn.Identity{Method: authn.MethodPassword, Name: p.User})
	}
	g.hmacAdmissions = map[string]*admission{}
	if g.HMAC != nil {
		for _, k := range g.HMAC.Keys {
			g.hmacAdmissions[k.KeyID] = newAdmission(authn.Identity{Method: authn.MethodHMAC, Name: k.KeyID})
		}
	}
	g.localAdmission = newAdmission(authn.Identity{Method: authn.MethodLocal})
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

// peerAddr is the address of a TCP peer given as host:port (the request's
// RemoteAddr); over the tailnet, begin takes the peer's tailnet address as
// the node saw it, which no listener wrapper changes.
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// isHostOf reports whether remote is host:port for this host, as Caddy
// writes the client_ip of a request that no trusted proxy relayed.
func isHostOf(host, remote string) bool {
	return len(remote) > len(host) && remote[len(host)] == ':' && remote[:len(host)] == host
}
