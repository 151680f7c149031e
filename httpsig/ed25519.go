package httpsig

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clawguard/clawguard/httpsig/sfv"
)

// AlgEd25519 is RFC 9421's "ed25519" algorithm (§3.3.6): EdDSA over the
// signature base with an Ed25519 key. clawguard's paired devices use it to
// prove possession of their key on every request.
const AlgEd25519 = "ed25519"

// SignEd25519 adds an RFC 9421 ed25519 signature to req, covering the same
// components and parameters as Sign (with alg="ed25519").
func SignEd25519(req *http.Request, keyid string, key ed25519.PrivateKey, opts ...SignOption) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("sign: ed25519 key for %q is %d bytes, want %d", keyid, len(key), ed25519.PrivateKeySize)
	}
	s := signer{label: DefaultLabel, digest: DigestSHA256}
	for _, o := range opts {
		o(&s)
	}
	return s.signWith(req, keyid, AlgEd25519, func(base string) []byte {
		return ed25519.Sign(key, []byte(base))
	})
}

// signWith is the algorithm-independent part of signing: components,
// Content-Digest, parameters and the two fields; sum computes the signature
// over the base. (Sign's hmac-sha256 path does the same with hmacSHA256.)
func (s *signer) signWith(req *http.Request, keyid, alg string, sum func(base string) []byte) error {
	if keyid == "" {
		return fmt.Errorf("sign: empty keyid")
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	m, err := outgoingMessage(req)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	components := []string{"@method", "@target-uri"}
	if !s.noBody && hasOutgoingBody(req) {
		if err := setContentDigest(req, s.digest); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		components = append(components, "content-digest")
	}
	for _, h := range s.extra {
		if !slices.Contains(components, h) {
			components = append(components, h)
		}
	}
	if s.created.IsZero() {
		s.created = time.Now()
	}
	if s.nonce == "" {
		if s.nonce, err = randomNonce(); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
	}
	il := sfv.InnerList{Params: sfv.Params{
		{Key: "created", Value: s.created.Unix()},
		{Key: "nonce", Value: s.nonce},
		{Key: "keyid", Value: keyid},
		{Key: "alg", Value: alg},
	}}
	if s.tag != "" {
		il.Params = append(il.Params, sfv.Param{Key: "tag", Value: s.tag})
	}
	for _, c := range components {
		il.Items = append(il.Items, sfv.Item{Value: c})
	}
	p, err := parseSigParams(&il)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if err := checkLabelFree(req.Header, s.label); err != nil {
		return err
	}
	base, err := signatureBase(m, p)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	input, err := sfv.MarshalDictionary(sfv.Dictionary{{Key: s.label, Member: sfv.Member{InnerList: &il}}})
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	sig, _ := sfv.MarshalDictionary(sfv.Dictionary{{Key: s.label, Member: sfv.Member{Item: &sfv.Item{Value: sum(base)}}}})
	req.Header.Add("Signature-Input", input)
	req.Header.Add("Signature", sig)
	return nil
}

// Ed25519Config configures an Ed25519Verifier. The fields mean what they mean
// in Config; PublicKey replaces Keys.
type Ed25519Config struct {
	// PublicKey returns the key of a keyid, or false when the keyid is not
	// known (refused with unknown_key). Required. It is called for every
	// request, so keys can come from a live store (paired devices).
	PublicKey func(keyid string) (ed25519.PublicKey, bool)

	// Label, Tag, MaxAge, MaxBodyBytes, Scheme, Authority, Nonces,
	// MaxNonces, OnReplay and Now: as in Config (request mode), with the
	// same defaults.
	Label        string
	Tag          string
	MaxAge       time.Duration
	MaxBodyBytes int64
	Scheme       string
	Authority    string
	Nonces       *NonceCache
	MaxNonces    int
	OnReplay     func()
	Now          func() time.Time
}

// Ed25519Verifier checks RFC 9421 ed25519 request signatures under the same
// rules as Verifier (coverage, created, nonce replay, Content-Digest). It is
// safe for concurrent use.
type Ed25519Verifier struct {
	publicKey func(string) (ed25519.PublicKey, bool)
	policy    *Verifier // the rules; its Keys are unused
}

// NewEd25519Verifier checks cfg and fills in its defaults.
func NewEd25519Verifier(cfg Ed25519Config) (*Ed25519Verifier, error) {
	if cfg.PublicKey == nil {
		return nil, fmt.Errorf("httpsig ed25519 verifier: no PublicKey function")
	}
	c := Config{
		Label: cfg.Label, Tag: cfg.Tag, MaxAge: cfg.MaxAge, MaxBodyBytes: cfg.MaxBodyBytes,
		Scheme: strings.ToLower(cfg.Scheme), Authority: cfg.Authority,
		Nonces: cfg.Nonces, MaxNonces: cfg.MaxNonces, OnReplay: cfg.OnReplay, Now: cfg.Now,
	}
	switch {
	case c.MaxAge < 0:
		return nil, fmt.Errorf("httpsig ed25519 verifier: negative max_age %s", c.MaxAge)
	case c.MaxAge == 0:
		c.MaxAge = DefaultMaxAge
	}
	switch {
	case c.MaxBodyBytes < 0:
		return nil, fmt.Errorf("httpsig ed25519 verifier: negative max body size %d", c.MaxBodyBytes)
	case c.MaxBodyBytes == 0:
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Label != "" {
		if err := sfvKey(c.Label); err != nil {
			return nil, fmt.Errorf("httpsig ed25519 verifier: label: %w", err)
		}
	}
	if c.Scheme != "" && c.Scheme != "http" && c.Scheme != "https" {
		return nil, fmt.Errorf("httpsig ed25519 verifier: scheme %q is not http or https", c.Scheme)
	}
	if strings.ContainsAny(c.Authority, "/?#@ \t\r\n") {
		return nil, fmt.Errorf("httpsig ed25519 verifier: authority %q must be host[:port]", c.Authority)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Nonces == nil {
		c.Nonces = NewNonceCache(c.MaxNonces, c.Now())
	}
	return &Ed25519Verifier{publicKey: cfg.PublicKey, policy: &Verifier{cfg: c}}, nil
}

// Verify checks r's ed25519 signature and then the same policy as
// Verifier.Verify. The signature is checked first, so a request without the
// private key neither fills the replay cache nor makes the verifier buffer a
// body.
func (v *Ed25519Verifier) Verify(r *http.Request) (*Result, error) {
	now := v.policy.cfg.Now()
	label, p, err := v.verifySignature(r)
	if err != nil {
		return nil, err
	}
	return v.policy.finish(r, label, p, now)
}

func (v *Ed25519Verifier) verifySignature(r *http.Request) (string, *sigParams, error) {
	input, hasInput := fieldValue(r.Header, "Signature-Input")
	signature, hasSig := fieldValue(r.Header, "Signature")
	if !hasInput && !hasSig {
		return "", nil, refuse(CodeSignatureMissing, "no Signature-Input and Signature header fields")
	}
	label, p, sig, err := selectSignature(input, signature, v.policy.cfg.Label)
	if err != nil {
		return "", nil, err
	}
	// alg is optional in RFC 9421, but when present it must name this
	// algorithm: an hmac-sha256 signature is never checked as ed25519.
	if p.alg != "" && p.alg != AlgEd25519 {
		return "", nil, refuse(CodeBadAlg, "signature %q has alg %q; only %q is accepted", label, p.alg, AlgEd25519)
	}
	if p.keyid == "" {
		return "", nil, refuse(CodeUnknownKey, "signature %q has no keyid parameter", label)
	}
	pub, ok := v.publicKey(p.keyid)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return "", nil, refuse(CodeUnknownKey, "keyid %q is not known", p.keyid)
	}
	base, err := signatureBase(incomingMessage(r, v.policy.cfg.Scheme, v.policy.cfg.Authority), p)
	if err != nil {
		return "", nil, refuseErr(CodeSignatureMalformed, err, "signature %q", label)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, []byte(base), sig) {
		return "", nil, refuse(CodeBadSignature, "signature %q does not match the request", label)
	}
	return label, p, nil
}

// finish applies the policy to a signature whose cryptographic check passed:
// coverage and time, the nonce, and the body against Content-Digest. It is
// the tail of Verify, shared with Ed25519Verifier.
func (v *Verifier) finish(r *http.Request, label string, p *sigParams, now time.Time) (*Result, error) {
	if err := v.checkPolicy(r, p, now); err != nil {
		return nil, err
	}
	if err := v.cfg.Nonces.use(p.keyid, p.nonce, p.created, now, v.cfg.MaxAge); err != nil {
		if err.Code == CodeReplay && v.cfg.OnReplay != nil {
			v.cfg.OnReplay()
		}
		return nil, err
	}
	res := &Result{
		Label:      label,
		KeyID:      p.keyid,
		Created:    time.Unix(p.created, 0),
		Nonce:      p.nonce,
		Tag:        p.tag,
		Components: p.components,
	}
	if p.covers("content-digest") {
		if err := verifyBody(r, v.cfg.MaxBodyBytes); err != nil {
			return nil, err
		}
		res.BodyVerified = true
	} else if r.ContentLength < 0 {
		// Length unknown (chunked): only an empty body may go unsigned.
		empty, err := bodyIsEmpty(r)
		if err != nil {
			return nil, err
		}
		if !empty {
			return nil, refuse(CodeDigestMissing, "the request has a body but content-digest is not covered")
		}
	}
	return res, nil
}
