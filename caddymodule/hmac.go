package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/httpsig"
)

// HMAC configures RFC 9421 request signatures with hmac-sha256 (docs/design.md,
// "Gate", HMAC): machine clients sign @method, @target-uri and, with a body,
// content-digest, with created and a nonce; upstreams see hmac:<keyid>.
// MaxAge, MaxBody and Origin apply to every key of the gate: there is one
// replay window.
type HMAC struct {
	// Keys are the accepted keys. List the old and the new key side by side
	// to rotate. Required (at least one).
	Keys []HMACKey `json:"keys"`

	// MaxAge is how old a signature's created may be; nonces are remembered
	// this long. 1s to 24h. Default: 5m.
	MaxAge caddy.Duration `json:"max_age,omitempty"`

	// MaxBody is the largest body hashed against Content-Digest, in bytes;
	// larger signed bodies get 413. The body is held in memory until it is
	// verified. Default: 10 MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// Origin is the scheme://host[:port] clients sign @target-uri (or
	// @scheme and @authority) for, when it differs from what the gate sees:
	// behind a TLS-terminating proxy or a port mapping. Default: as the gate
	// sees the request (https for TLS connections, else http; the Host
	// header).
	Origin string `json:"origin,omitempty"`
}

// HMACKey is one signing key.
type HMACKey struct {
	// KeyID is the keyid clients put in Signature-Input; upstreams see
	// hmac:<keyid>. Required: 1 to 64 of A-Z a-z 0-9 . _ : @ / + -, starting
	// with a letter or digit.
	KeyID string `json:"key_id"`

	// Secret is the shared key: {vault.NAME}, {env.NAME} or {file./path}
	// (resolved when the config loads), or a literal. Used as its bytes, or
	// decoded when written "base64:…"; at least 32 bytes either way (the
	// rule httpsig.ParseKey and `clawguard sign` share). Required.
	Secret string `json:"secret"`
}

// Bounds and defaults of the HMAC options.
const (
	minHMACMaxAge = time.Second
	maxHMACMaxAge = 24 * time.Hour
	maxHMACBody   = 1 << 30
)

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,63}$`)

// nonceCaches holds the HMAC replay caches by state directory across config
// loads, so `caddy reload` neither forgets the nonces it has seen (a replay
// right after a reload is still refused) nor starts a new cache whose horizon
// would refuse requests signed just before the reload.
var nonceCaches = caddy.NewUsagePool()

// pooledNonces is a NonceCache in the pool; it holds no resources.
//
// A replay cache is one state directory's, in this process's memory: the
// gates of one Caddy process with the same state_dir share it, whatever
// their site. Gates that share an HMAC key but not a cache, two sites with
// different state_dir or two Caddy processes, each accept a given signature
// once: a captured request can be replayed once to each of them within
// max_age. Give the gates that accept a key the same state_dir, or each its
// own key (`clawguard audit` warns about a key shared across state dirs).
type pooledNonces struct{ *httpsig.NonceCache }

func (pooledNonces) Destruct() error { return nil }

// gateHMAC is one gate's provisioned HMAC verifier.
type gateHMAC struct {
	poolKey  string
	verifier *httpsig.Verifier
}

// check validates the options that need no secret, so the Caddyfile parser
// and Provision report the same mistakes.
func (h *HMAC) check() error {
	if len(h.Keys) == 0 {
		return errors.New("hmac: no keys")
	}
	seen := make(map[string]bool, len(h.Keys))
	for _, k := range h.Keys {
		if err := checkKeyID(k.KeyID); err != nil {
			return err
		}
		if seen[k.KeyID] {
			return fmt.Errorf("hmac %s: keyid listed twice", k.KeyID)
		}
		seen[k.KeyID] = true
		if k.Secret == "" {
			return fmt.Errorf("hmac %s: empty secret", k.KeyID)
		}
	}
	if d := time.Duration(h.MaxAge); d != 0 && (d < minHMACMaxAge || d > maxHMACMaxAge) {
		return fmt.Errorf("hmac max_age: %s is outside %s..%s", d, minHMACMaxAge, maxHMACMaxAge)
	}
	if h.MaxBody < 0 || h.MaxBody > maxHMACBody {
		return fmt.Errorf("hmac max_body: %d bytes is outside 1..%d", h.MaxBody, maxHMACBody)
	}
	if h.Origin != "" {
		if _, _, err := parseOrigin(h.Origin); err != nil {
			return err
		}
	}
	return nil
}

func checkKeyID(id string) error {
	if !keyIDPattern.MatchString(id) {
		return fmt.Errorf("hmac: keyid %q must be 1 to 64 of A-Z a-z 0-9 . _ : @ / + - starting with a letter or digit", id)
	}
	return nil
}

// parseOrigin splits scheme://host[:port] into the verifier's Scheme and
// Authority.
func parseOrigin(s string) (scheme, authority string, err error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("hmac origin: want scheme://host[:port] with scheme http or https, got %q", s)
	}
	return u.Scheme, u.Host, nil
}

// provisionHMAC resolves the keys and builds the verifier on the state
// directory's shared replay cache. Errors name the key.
func (g *Gate) provisionHMAC(sec *secrets) error {
	h := g.HMAC
	if h == nil {
		return nil
	}
	if err := h.check(); err != nil {
		return err
	}
	keys := make(map[string][]byte, len(h.Keys))
	for _, k := range h.Keys {
		raw, _, err := sec.resolve(k.Secret)
		if err != nil {
			return fmt.Errorf("hmac %s: %w", k.KeyID, err)
		}
		if keys[k.KeyID], err = httpsig.ParseKey([]byte(raw)); err != nil {
			return fmt.Errorf("hmac %s: %w", k.KeyID, err)
		}
	}
	cfg := httpsig.Config{
		Keys:         keys,
		MaxAge:       time.Duration(h.MaxAge),
		MaxBodyBytes: h.MaxBody,
		Original:     originalRequest,
		OnReplay:     g.metrics.hmacReplays.Inc,
	}
	if h.Origin != "" {
		cfg.Scheme, cfg.Authority, _ = parseOrigin(h.Origin)
	}
	dir, err := filepath.Abs(g.stateDir)
	if err != nil {
		return fmt.Errorf("hmac: state_dir: %w", err)
	}
	poolKey := "hmac-nonces:" + dir
	c, _, err := nonceCaches.LoadOrNew(poolKey, func() (caddy.Destructor, error) {
		return pooledNonces{httpsig.NewNonceCache(0, time.Now())}, nil
	})
	if err != nil {
		return fmt.Errorf("hmac: %w", err)
	}
	// Set before anything else can fail: Caddy calls Cleanup after a failed
	// Provision, which releases the pool reference.
	g.hmac = &gateHMAC{poolKey: poolKey}
	cfg.Nonces = c.(pooledNonces).NonceCache
	if g.hmac.verifier, err = httpsig.NewVerifier(cfg); err != nil {
		return fmt.Errorf("hmac: %w", err)
	}
	return nil
}

// cleanupHMAC releases this config's reference to the replay cache. Errors
// are logged: Cleanup must go on to release the rate limiter.
func (g *Gate) cleanupHMAC() {
	if g.hmac == nil {
		return
	}
	if _, err := nonceCaches.Delete(g.hmac.poolKey); err != nil {
		g.logger.Error("releasing the hmac replay cache", zap.String("pool_key", g.hmac.poolKey), zap.Error(err))
	}
}

// hasSignature reports whether r presents an RFC 9421 signature.
func hasSignature(h http.Header) bool {
	return len(h["Signature-Input"]) > 0 || len(h["Signature"]) > 0
}

// authenticateHMAC verifies r's signature. Refusals carry httpsig's code and
// message; only credential failures (401) count toward the rate limit, not
// a body over the limit (413), an unreadable body (400) or a full replay
// cache (503), which a client holding the key can also run into.
func (g *Gate) authenticateHMAC(r *http.Request) verdict {
	res, err := g.hmac.verifier.Verify(r)
	if err != nil {
		var e *httpsig.Error
		if !errors.As(err, &e) {
			e = &httpsig.Error{Code: httpsig.CodeSignatureMalformed, Message: "invalid signature"}
		}
		v := verdict{outcome: authFailed, method: authn.MethodHMAC, code: e.Code, msg: e.Message}
		if status := e.HTTPStatus(); status != http.StatusUnauthorized {
			v.outcome, v.status = authRefused, status
		}
		return v
	}
	// The signature is consumed, like an Authorization header: the
	// upstream learns who signed from X-Clawguard-Identity (signed by the
	// clawguard_signed transport when it needs proof).
	r.Header.Del("Signature")
	r.Header.Del("Signature-Input")
	return verdict{outcome: authOK, method: authn.MethodHMAC, id: authn.Identity{Method: authn.MethodHMAC, Name: res.KeyID}}
}

// originalRequest is the request as the client sent it, before any rewrite,
// uri or method directive that ran ahead of the gate changed it: what the
// client signed. Caddy's copy keeps only the method, request-target and URL;
// Host and TLS, which those directives cannot change, come from r. When
// neither method nor request-target changed, r is that request (and
// copying it would cost every signed request an allocation).
func originalRequest(r *http.Request) *http.Request {
	o, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || o.Method == r.Method && o.RequestURI == r.RequestURI && r.RequestURI != "" {
		return r
	}
	return withConnection(o, r)
}

// withConnection is o with r's Host and TLS. (A function of its own, so that
// only this path puts o on the heap.)
func withConnection(o http.Request, r *http.Request) *http.Request {
	o.Host, o.TLS = r.Host, r.TLS
	return &o
}
