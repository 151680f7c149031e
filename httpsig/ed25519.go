package httpsig

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"time"
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
	return s.signWith(req, keyid, AlgEd25519, func(base []byte) []byte {
		return ed25519.Sign(key, base)
	})
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
		Scheme: cfg.Scheme, Authority: cfg.Authority,
		Nonces: cfg.Nonces, MaxNonces: cfg.MaxNonces, OnReplay: cfg.OnReplay, Now: cfg.Now,
	}
	if err := c.setDefaults(); err != nil {
		return nil, fmt.Errorf("httpsig ed25519 verifier: %w", err)
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

// verifySignature checks the ed25519 signature with the keyid's public key,
// without policy.
func (v *Ed25519Verifier) verifySignature(r *http.Request) (string, *sigParams, error) {
	return v.policy.verifyWith(r, AlgEd25519, func(keyid string, base, sig []byte) *Error {
		pub, ok := v.publicKey(keyid)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return refuse(CodeUnknownKey, "keyid %q is not known", keyid)
		}
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, base, sig) {
			return refuse(CodeBadSignature, "the signature does not match the request")
		}
		return nil
	})
}
