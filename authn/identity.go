package authn

import (
	"net/http"
	"strings"

	"github.com/clawguard/clawguard/wire"
)

// Method names how a request was authenticated. The values appear in the
// X-Clawguard-Method header, in metrics labels and in WWW-Authenticate.
type Method string

// The authentication methods of the gate.
const (
	MethodToken    Method = "token"
	MethodPassword Method = "password"
	MethodProxy    Method = "proxy"
	MethodDevice   Method = "device"
	MethodHMAC     Method = "hmac"
	MethodTailnet  Method = "tailnet"
	MethodLocal    Method = "local"
)

// Identity is who the gate authenticated a request as.
type Identity struct {
	Method Method
	// Name is the principal within the method: the token's name, the user,
	// the proxy-asserted user, the device id, the HMAC keyid or the tailnet
	// login. Empty for local.
	Name string
}

// String renders the identity the way upstreams see it in
// X-Clawguard-Identity: "local", or "<kind>:<name>" where kind is "user" for
// passwords and "proxy" for trusted proxies.
func (id Identity) String() string {
	switch id.Method {
	case MethodLocal:
		return "local"
	case MethodPassword:
		return "user:" + id.Name
	default:
		return string(id.Method) + ":" + id.Name
	}
}

// StripIdentityHeaders removes every X-Clawguard-* header a client sent, so
// that no client can assert an identity the gate did not establish.
func StripIdentityHeaders(h http.Header) {
	for name := range h {
		// Header keys are canonicalised by net/http, but a handler earlier in
		// the chain may have set a raw key; compare case-insensitively.
		if len(name) >= len(wire.HeaderPrefix) && strings.EqualFold(name[:len(wire.HeaderPrefix)], wire.HeaderPrefix) {
			delete(h, name)
		}
	}
}

// SetIdentityHeaders writes the identity for the upstream, after
// StripIdentityHeaders has removed anything the client sent.
func SetIdentityHeaders(h http.Header, id Identity) {
	device := ""
	if id.Method == MethodDevice {
		device = id.Name
	}
	SetIdentityHeaderValues(h, id.String(), string(id.Method), device)
}

// SetIdentityHeaderValues writes identity (as Identity.String renders it),
// method and, when not empty, device into h under their canonical names,
// replacing any value, in one
// allocation: the three values share a backing array, each header's slice
// capped at its one value, so that appending to one (Header.Add) never
// writes into another. The slices are the request's own: a handler after
// the gate may rewrite a value in place (Caddy's header replacements do)
// without touching any other request.
func SetIdentityHeaderValues(h http.Header, identity, method, device string) {
	n := 2
	if device != "" {
		n = 3
	}
	v := make([]string, n)
	v[0], v[1] = identity, method
	h[wire.HeaderIdentity] = v[0:1:1]
	h[wire.HeaderMethod] = v[1:2:2]
	if device != "" {
		v[2] = device
		h[wire.HeaderDevice] = v[2:3:3]
	}
}
