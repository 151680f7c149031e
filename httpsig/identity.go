package httpsig

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/clawguard/clawguard/wire"
)

// Identity signing: the gate proves to an upstream (the sidecar included)
// that the X-Clawguard-* identity headers came from it.
const (
	IdentityLabel = "clawguard"          // signature label of identity signatures
	IdentityTag   = "clawguard-identity" // tag parameter of identity signatures
)

// SignIdentity signs the identity headers of a request the gate is about to
// send upstream. It covers @method, @target-uri and every X-Clawguard-*
// header present (X-Clawguard-Identity is required), with created, a random
// nonce, keyid, alg and tag=IdentityTag, under IdentityLabel.
//
// Any Signature and Signature-Input fields already on req are removed first:
// the gate has consumed the client's signature and the upstream trusts only
// the gate's. The body is neither read nor covered, so streaming bodies stay
// streaming; the nonce, checked by the upstream, stops a captured identity
// signature from being reused with another body.
//
// Sign the request exactly as it goes out (e.g. in a RoundTripper, see
// IdentityTransport): @target-uri is built from req.URL and req.Host as Go's
// client sends them, which is what the upstream sees.
func SignIdentity(req *http.Request, keyid string, key []byte, opts ...SignOption) error {
	if req.Header.Get(wire.HeaderIdentity) == "" {
		return fmt.Errorf("sign identity: no X-Clawguard-Identity header")
	}
	req.Header.Del("Signature")
	req.Header.Del("Signature-Input")
	var names []string
	for h := range req.Header {
		if strings.HasPrefix(h, identityHeaderPrefix) {
			names = append(names, strings.ToLower(h))
		}
	}
	sort.Strings(names)
	s := signer{label: IdentityLabel, tag: IdentityTag, noBody: true}
	for _, o := range opts {
		o(&s)
	}
	s.extra = append(names, s.extra...)
	return s.sign(req, keyid, key)
}

// IdentityTransport is an http.RoundTripper that signs each request's
// identity headers with SignIdentity before passing it to Base.
type IdentityTransport struct {
	Base  http.RoundTripper // default http.DefaultTransport
	KeyID string
	Key   []byte
}

// RoundTrip signs a copy of req (a RoundTripper must not modify its
// argument) and sends it.
func (t *IdentityTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	if err := SignIdentity(out, t.KeyID, t.Key); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(out)
}

var _ http.RoundTripper = (*IdentityTransport)(nil)
