package httpsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"net/http"
	"net/textproto"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Defaults for Config.
const (
	DefaultMaxAge         = 5 * time.Minute  // request mode
	DefaultIdentityMaxAge = 30 * time.Second // identity mode: gate and upstream share a host or a LAN
	MaxFutureSkew         = 5 * time.Second  // created may be this far ahead of the verifier's clock
)

// Config configures a Verifier. The zero value of every field but Keys is a
// secure default.
type Config struct {
	// Keys maps keyid to HMAC secret; required. List the old and the new key
	// side by side to rotate. Each secret must be at least MinKeyBytes long.
	Keys map[string][]byte

	// Identity selects identity mode: verify the signature the gate puts on
	// the identity headers it sends upstream (see SignIdentity) instead of a
	// client's request signature. Default false (request mode).
	Identity bool

	// Label is the signature label to verify. Default: in request mode, the
	// request must carry exactly one signature (several are refused as
	// ambiguous); in identity mode, IdentityLabel.
	Label string

	// Tag, if set, must equal the signature's tag parameter. Default: none in
	// request mode (but IdentityTag is refused there, so an identity signature
	// is never taken for a client's); IdentityTag in identity mode.
	Tag string

	// MaxAge is how old created may be; nonces are remembered this long.
	// Default DefaultMaxAge (5m) in request mode, DefaultIdentityMaxAge (30s)
	// in identity mode.
	MaxAge time.Duration

	// MaxBodyBytes limits the body hashed for Content-Digest (body_too_large,
	// HTTP 413, past it). Default DefaultMaxBodyBytes (10 MiB).
	MaxBodyBytes int64

	// Scheme and Authority are the scheme and host[:port] clients sign for,
	// when they differ from what this server sees (behind a TLS-terminating
	// proxy, or a port mapping). Default: https when the connection is TLS,
	// else http; and the Host header.
	Scheme    string
	Authority string

	// Original, if set, returns the request as the client sent it when
	// middleware that ran before the verifier may have rewritten its method
	// or target (Caddy's rewrite, uri and method directives do; the gate
	// returns Caddy's OriginalRequestCtxKey copy). Its method, request-target,
	// Host and TLS state are what the signature is checked against; headers
	// and body are always r's. Default: r itself.
	Original func(r *http.Request) *http.Request

	// Nonces is the replay cache. Share one across Verifiers that replace each
	// other (a config reload) so a reload neither forgets nor refuses recent
	// nonces. Default: a new NonceCache of MaxNonces entries.
	Nonces *NonceCache

	// MaxNonces is the capacity of the replay cache made when Nonces is nil.
	// Default DefaultMaxNonces.
	MaxNonces int

	// OnReplay, if set, is called once per refused replay (for the
	// clawguard_hmac_replays_total counter).
	OnReplay func()

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Verifier checks RFC 9421 hmac-sha256 request signatures. It is safe for
// concurrent use.
type Verifier struct {
	cfg Config
	// macs holds, per keyid, HMAC states already keyed: Reset restores one
	// in a few nanoseconds, where hmac.New hashes the key pads again.
	macs map[string]*sync.Pool // of *keyedMAC
}

// keyedMAC is a pooled HMAC state with room for its sum, so a verification
// allocates neither.
type keyedMAC struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// Result describes a verified signature.
type Result struct {
	Label        string
	KeyID        string
	Created      time.Time
	Nonce        string
	Tag          string
	Components   []string // covered components, in signed order
	BodyVerified bool     // the body was checked against Content-Digest (r.Body now holds those bytes)
}

// NewVerifier checks cfg and fills in its defaults.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Keys) == 0 {
		return nil, fmt.Errorf("httpsig verifier: no keys")
	}
	keys := make(map[string][]byte, len(cfg.Keys))
	for id, k := range cfg.Keys {
		if id == "" {
			return nil, fmt.Errorf("httpsig verifier: empty keyid")
		}
		if len(k) < MinKeyBytes {
			return nil, fmt.Errorf("httpsig verifier: key %q is %d bytes; at least %d are required", id, len(k), MinKeyBytes)
		}
		keys[id] = append([]byte(nil), k...)
	}
	cfg.Keys = keys
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("httpsig verifier: %w", err)
	}
	v := &Verifier{cfg: cfg, macs: make(map[string]*sync.Pool, len(keys))}
	for id, k := range keys {
		v.macs[id] = &sync.Pool{New: func() any { return &keyedMAC{h: hmac.New(sha256.New, k)} }}
	}
	return v, nil
}

// setDefaults checks every field but Keys and fills in the defaults.
func (cfg *Config) setDefaults() error {
	if cfg.Identity {
		cfg.Label = cmpOr(cfg.Label, IdentityLabel)
		cfg.Tag = cmpOr(cfg.Tag, IdentityTag)
		if cfg.MaxAge == 0 {
			cfg.MaxAge = DefaultIdentityMaxAge
		}
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxAge < 0 {
		return fmt.Errorf("negative max_age %s", cfg.MaxAge)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBodyBytes < 0 {
		return fmt.Errorf("negative max body size %d", cfg.MaxBodyBytes)
	}
	if cfg.Label != "" {
		if err := sfvKey(cfg.Label); err != nil {
			return fmt.Errorf("label: %w", err)
		}
	}
	switch cfg.Scheme = strings.ToLower(cfg.Scheme); cfg.Scheme {
	case "", "http", "https":
	default:
		return fmt.Errorf("scheme %q is not http or https", cfg.Scheme)
	}
	if strings.ContainsAny(cfg.Authority, "/?#@ \t\r\n") {
		return fmt.Errorf("authority %q must be host[:port]", cfg.Authority)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Nonces == nil {
		cfg.Nonces = NewNonceCache(cfg.MaxNonces, cfg.Now())
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// MaxAge returns the configured max_age (after defaults).
func (v *Verifier) MaxAge() time.Duration { return v.cfg.MaxAge }

// Verify checks r's signature and, when content-digest is covered, its body;
// a nil error means every rule passed. Refusals are *Error values with a
// stable Code and an HTTPStatus. On success with a checked body, r.Body
// holds the verified bytes.
//
// Order matters: the HMAC is checked before anything that costs memory or
// state, so a request without the key can neither fill the replay cache nor
// make the verifier buffer a body; the nonce is recorded last, after the
// body matched Content-Digest, so a refused body does not use it up.
func (v *Verifier) Verify(r *http.Request) (*Result, error) {
	now := v.cfg.Now()
	label, p, err := v.verifySignature(r)
	if err != nil {
		return nil, err
	}
	return v.finish(r, label, p, now)
}

// verifySignature checks the hmac-sha256 signature (constant-time compare),
// without policy.
func (v *Verifier) verifySignature(r *http.Request) (string, *sigParams, error) {
	return v.verifyWith(r, AlgHMACSHA256, func(keyid string, base, sig []byte) *Error {
		pool, ok := v.macs[keyid]
		if !ok {
			return refuse(CodeUnknownKey, "keyid %q is not known", keyid)
		}
		mac := pool.Get().(*keyedMAC)
		mac.h.Reset()
		mac.h.Write(base)
		ok = hmac.Equal(mac.h.Sum(mac.sum[:0]), sig)
		pool.Put(mac)
		if !ok {
			return refuse(CodeBadSignature, "the signature does not match the request")
		}
		return nil
	})
}

// verifyWith selects the signature, checks that its alg (if any) is alg and
// that it has a keyid, builds the signature base, and has check verify the
// signature bytes for that keyid (unknown_key or bad_signature). It applies
// no policy (coverage, time, nonce).
func (v *Verifier) verifyWith(r *http.Request, alg string, check func(keyid string, base, sig []byte) *Error) (string, *sigParams, error) {
	input, hasInput := fieldValue(r.Header, "Signature-Input")
	signature, hasSig := fieldValue(r.Header, "Signature")
	if !hasInput && !hasSig {
		return "", nil, refuse(CodeSignatureMissing, "no Signature-Input and Signature header fields")
	}
	label, p, sig, err := selectSignature(input, signature, v.cfg.Label)
	if err != nil {
		return "", nil, err
	}
	// alg is optional in RFC 9421, but when present it must name this
	// verifier's algorithm: a signature is never checked as another kind.
	if p.alg != "" && p.alg != alg {
		return "", nil, refuse(CodeBadAlg, "signature %q has alg %q; only %q is accepted", label, p.alg, alg)
	}
	if p.keyid == "" {
		return "", nil, refuse(CodeUnknownKey, "signature %q has no keyid parameter", label)
	}
	src := r
	if v.cfg.Original != nil {
		if o := v.cfg.Original(r); o != nil {
			src = o
		}
	}
	m := incomingMessage(src, v.cfg.Scheme, v.cfg.Authority)
	m.header = r.Header
	buf := baseBuffers.Get().(*baseBuffer)
	base, err := appendSignatureBase(buf.b, &m, p)
	if err != nil {
		buf.release(base)
		return "", nil, refuseErr(CodeSignatureMalformed, err, "signature %q", label)
	}
	refusal := check(p.keyid, base, sig)
	buf.release(base)
	if refusal != nil {
		return "", nil, refusal
	}
	return label, p, nil
}

// finish applies the policy to a signature whose cryptographic check passed:
// coverage and time, then the body against Content-Digest, and only then
// records the nonce. A request refused for its body (tampered, too large,
// unreadable, or unsigned) leaves the nonce unused: otherwise whoever sees a
// signed request in flight could burn its nonce by sending it first with
// another body, and the genuine request would be refused as a replay. The
// nonce is looked up, without recording it, before a body is read, so a
// replay is refused without buffering its body; two copies racing past that
// lookup are settled when the nonce is recorded (one is a replay). Without
// a body to read, recording it is the only lookup. Nothing
// here runs for a request without the key, so it can neither fill the replay
// cache nor make the verifier buffer a body.
func (v *Verifier) finish(r *http.Request, label string, p *sigParams, now time.Time) (*Result, error) {
	if err := v.checkPolicy(r, p, now); err != nil {
		return nil, err
	}
	k := makeNonceKey(p.keyid, p.nonce)
	digest := p.covers("content-digest")
	unknownLength := !digest && !v.cfg.Identity && r.ContentLength < 0
	if digest || unknownLength { // the body is read before the nonce is used
		if err := v.cfg.Nonces.check(k, p.created, now, v.cfg.MaxAge); err != nil {
			return nil, v.refused(err)
		}
	}
	res := &Result{
		Label:      label,
		KeyID:      p.keyid,
		Created:    time.Unix(p.created, 0),
		Nonce:      p.nonce,
		Tag:        p.tag,
		Components: p.components,
	}
	if digest {
		if err := verifyBody(r, v.cfg.MaxBodyBytes); err != nil {
			return nil, err
		}
		res.BodyVerified = true
	} else if unknownLength {
		// Length unknown (chunked): only an empty body may go unsigned.
		empty, err := bodyIsEmpty(r)
		if err != nil {
			return nil, err
		}
		if !empty {
			return nil, refuse(CodeDigestMissing, "the request has a body but content-digest is not covered")
		}
	}
	if err := v.cfg.Nonces.use(k, p.created, now, v.cfg.MaxAge); err != nil {
		return nil, v.refused(err)
	}
	return res, nil
}

// refused counts a replay refusal (OnReplay) and returns it as an error.
func (v *Verifier) refused(err *Error) error {
	if err.Code == CodeReplay && v.cfg.OnReplay != nil {
		v.cfg.OnReplay()
	}
	return err
}

// checkPolicy applies docs/design.md's rules to a signature whose HMAC is valid.
func (v *Verifier) checkPolicy(r *http.Request, p *sigParams, now time.Time) error {
	switch {
	case v.cfg.Tag != "" && p.tag != v.cfg.Tag:
		return refuse(CodeCoverage, "signature tag is %q; %q is required", p.tag, v.cfg.Tag)
	case !v.cfg.Identity && p.tag == IdentityTag:
		return refuse(CodeCoverage, "a %q signature is not a request signature", IdentityTag)
	}
	if err := v.checkCoverage(r, p); err != nil {
		return err
	}
	if !p.hasCreated {
		return refuse(CodeCreatedMissing, "the created parameter is required")
	}
	created := time.Unix(p.created, 0)
	if age := now.Sub(created); age > v.cfg.MaxAge {
		return refuse(CodeExpired, "signature was created %s ago; the limit is %s", age.Round(time.Second), v.cfg.MaxAge)
	}
	if ahead := created.Sub(now); ahead > MaxFutureSkew {
		return refuse(CodeFuture, "signature is created %s in the future; at most %s is tolerated", ahead.Round(time.Second), MaxFutureSkew)
	}
	if p.hasExpires && now.After(time.Unix(p.expires, 0)) {
		return refuse(CodeExpired, "signature expired at %s", time.Unix(p.expires, 0).UTC().Format(time.RFC3339))
	}
	if p.nonce == "" {
		return refuse(CodeNonceMissing, "the nonce parameter is required")
	}
	return nil
}

// checkCoverage requires @method and the target (@target-uri, or @authority,
// @path and @query); in request mode, content-digest for a body of known
// length (unknown lengths are checked after the signature, in Verify); in
// identity mode, every X-Clawguard-* header present, and no content-digest
// (the gate streams bodies; see SignIdentity).
func (v *Verifier) checkCoverage(r *http.Request, p *sigParams) error {
	var missing []string
	if !p.covers("@method") {
		missing = append(missing, "@method")
	}
	if !p.covers("@target-uri") {
		for _, c := range []string{"@authority", "@path", "@query"} {
			if !p.covers(c) {
				missing = append(missing, "@target-uri (or @authority, @path and @query)")
				break
			}
		}
	}
	if v.cfg.Identity {
		names := make([]string, 0, 4)
		for h := range r.Header {
			if strings.HasPrefix(h, identityHeaderPrefix) {
				names = append(names, strings.ToLower(h))
			}
		}
		sort.Strings(names)
		if !slices.Contains(names, "x-clawguard-identity") {
			missing = append(missing, "x-clawguard-identity (header absent)")
		}
		for _, n := range names {
			if !p.covers(n) {
				missing = append(missing, n)
			}
		}
	}
	if len(missing) > 0 {
		return refuse(CodeCoverage, "signature must cover %s", strings.Join(missing, ", "))
	}
	if !v.cfg.Identity && r.ContentLength > 0 && !p.covers("content-digest") {
		return refuse(CodeDigestMissing, "the request has a body but content-digest is not covered")
	}
	return nil
}

// identityHeaderPrefix is the canonical prefix of the gate's identity headers.
var identityHeaderPrefix = textproto.CanonicalMIMEHeaderKey("x-clawguard-")
