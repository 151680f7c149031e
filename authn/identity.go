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
	h.Set(wire.HeaderIdentity, id.String())
	h.Set(wire.HeaderMethod, string(id.Method))
	if id.Method == MethodDevice {
		h.Set(wire.HeaderDevice, id.Name)
	}
}
