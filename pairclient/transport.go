package pairclient

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"

	"github.com/coder/websocket"

	"github.com/clawguard/clawguard/httpsig"
)

// Transport sends requests with the device token and, when Key is set, an
// RFC 9421 ed25519 signature by the device key (keyid = device id) — what a
// gate with require_device_signature demands.
type Transport struct {
	// Base sends the requests. Default: http.DefaultTransport.
	Base http.RoundTripper
	// Token is the device token. Required.
	Token string
	// Key, if set, signs each request.
	Key ed25519.PrivateKey
}

// RoundTrip authenticates a copy of req and sends it.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.Header.Set("Authorization", "Bearer "+t.Token)
	if t.Key != nil {
		if err := httpsig.SignEd25519(out, DeviceID(t.Key), t.Key); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, fmt.Errorf("signing request with the device key: %w", err)
		}
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(out)
}

// HTTPClient returns a client whose requests carry the device token (and a
// signature when key is not nil).
func HTTPClient(token string, key ed25519.PrivateKey) *http.Client {
	return &http.Client{Transport: &Transport{Token: token, Key: key}}
}

// Dial opens a WebSocket to url (ws:// or wss://) as the device: the token
// goes in the Authorization header of the handshake, which is signed when key
// is set. opts may be nil; its HTTPClient's transport, if any, is wrapped.
func Dial(ctx context.Context, url, token string, key ed25519.PrivateKey, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	o := websocket.DialOptions{}
	if opts != nil {
		o = *opts
	}
	var base http.RoundTripper
	if o.HTTPClient != nil {
		base = o.HTTPClient.Transport
		c := *o.HTTPClient
		c.Transport = &Transport{Base: base, Token: token, Key: key}
		o.HTTPClient = &c
	} else {
		o.HTTPClient = &http.Client{Transport: &Transport{Token: token, Key: key}}
	}
	return websocket.Dial(ctx, url, &o)
}
