package caddymodule

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/httpsig"
)

func init() {
	caddy.RegisterModule(SignedTransport{})
}

// gateIdentityVar is the request variable in which the gate records the
// identity it admitted (an authn.Identity). Only handlers can set variables,
// so its presence proves the request went through a gate.
const gateIdentityVar = "clawguard.identity"

// SignedTransport is the reverse_proxy transport `clawguard_signed`: Caddy's
// http transport (every option of `transport http` applies) that signs the
// gate's identity headers for the upstream with RFC 9421 hmac-sha256
// (httpsig.SignIdentity: X-Clawguard-Identity, -Method, -Device, @method,
// @target-uri, created, nonce, keyid, tag "clawguard-identity"), so an
// upstream holding the key can tell them from forgeries. The sidecar
// verifies them when its identity_keys name the same key.
//
// Signing happens here, as the request leaves for the upstream, rather than
// in the gate: @target-uri must be what the upstream receives, after
// handle_path, rewrite, header_up Host and the upstream address have all
// applied, and only the transport sees that.
//
// The transport signs only what a gate established: the identity headers
// are rebuilt from the identity the gate recorded for this request, and a
// request that did not pass a gate is not sent (502).
type SignedTransport struct {
	reverseproxy.HTTPTransport

	// IdentityKeyID is the keyid the upstream knows the key by (the sidecar's
	// identity_keys name). Required.
	IdentityKeyID string `json:"identity_key_id"`

	// IdentityKey is the HMAC key: {vault.NAME}, {env.NAME} or {file./path}
	// (resolved when the config loads) or a literal; used as its bytes, or
	// decoded when written "base64:…"; at least 32 bytes. Required.
	IdentityKey string `json:"identity_key"`

	// StateDir is where the vault for {vault.NAME} is. Default: the
	// clawguard app's state_dir, else $CLAWGUARD_STATE_DIR, else
	// $XDG_STATE_HOME/clawguard (/var/lib/clawguard as root).
	StateDir string `json:"state_dir,omitempty"`

	key []byte
}

// CaddyModule returns the Caddy module information.
func (SignedTransport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport.clawguard_signed",
		New: func() caddy.Module { return new(SignedTransport) },
	}
}

// Provision resolves the key, then provisions the http transport.
func (t *SignedTransport) Provision(ctx caddy.Context) error {
	if t.IdentityKeyID == "" || t.IdentityKey == "" {
		return errors.New("clawguard_signed: identity_key <keyid> <secret> is required")
	}
	dir := t.StateDir
	if dir == "" {
		app, err := loadApp(ctx)
		if err != nil {
			return fmt.Errorf("clawguard_signed: loading clawguard app: %w", err)
		}
		dir = app.StateDir
	}
	sec := &secrets{stateDir: dir}
	raw, _, err := sec.resolve(t.IdentityKey)
	if err != nil {
		return fmt.Errorf("clawguard_signed identity_key %s: %w", t.IdentityKeyID, err)
	}
	if t.key, err = httpsig.ParseKey([]byte(raw)); err != nil {
		return fmt.Errorf("clawguard_signed identity_key %s: %w", t.IdentityKeyID, err)
	}
	return t.HTTPTransport.Provision(ctx)
}

// errNoGate refuses to sign for a request no gate admitted: a site or route
// without `clawguard` in front of this transport.
var errNoGate = errors.New("clawguard_signed: the request did not pass a clawguard gate; refusing to vouch for its identity headers")

// RoundTrip signs a copy of req with the gate's identity and sends it with
// the http transport.
func (t *SignedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	id, ok := caddyhttp.GetVar(req.Context(), gateIdentityVar).(authn.Identity)
	if !ok {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errNoGate
	}
	out := req.WithContext(req.Context()) // shallow copy; the header is replaced below
	out.Header = req.Header.Clone()
	authn.StripIdentityHeaders(out.Header)
	authn.SetIdentityHeaders(out.Header, id)
	t.SetScheme(out) // @target-uri needs the scheme the http transport will use
	if err := httpsig.SignIdentity(out, t.IdentityKeyID, t.key); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("clawguard_signed: %w", err)
	}
	return t.HTTPTransport.RoundTrip(out)
}

// Interface guards
var (
	_ caddy.Provisioner                                = (*SignedTransport)(nil)
	_ caddy.CleanerUpper                               = (*SignedTransport)(nil)
	_ http.RoundTripper                                = (*SignedTransport)(nil)
	_ reverseproxy.TLSTransport                        = (*SignedTransport)(nil)
	_ reverseproxy.H2CTransport                        = (*SignedTransport)(nil)
	_ reverseproxy.ProxyProtocolTransport              = (*SignedTransport)(nil)
	_ reverseproxy.HealthCheckSchemeOverriderTransport = (*SignedTransport)(nil)
)
