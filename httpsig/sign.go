package httpsig

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clawguard/clawguard/httpsig/sfv"
)

// MinKeyBytes is the shortest HMAC key accepted for signing or verifying:
// 256 bits, the output size of SHA-256 (RFC 9421 §3.3.4 leaves the size to
// the application; shorter shared secrets are guessable offline from one
// signed request).
const MinKeyBytes = 32

// DefaultLabel is the signature label Sign uses unless told otherwise.
const DefaultLabel = "sig1"

// SignOption adjusts Sign.
type SignOption func(*signer)

// WithLabel sets the signature label (default DefaultLabel).
func WithLabel(label string) SignOption { return func(s *signer) { s.label = label } }

// WithHeaders covers these header fields too (case-insensitive); each must be
// present in the request.
func WithHeaders(names ...string) SignOption {
	return func(s *signer) {
		for _, n := range names {
			s.extra = append(s.extra, strings.ToLower(n))
		}
	}
}

// WithTag sets the tag parameter (RFC 9421 §2.3), naming the application the
// signature is meant for.
func WithTag(tag string) SignOption { return func(s *signer) { s.tag = tag } }

// WithCreated sets the created time (default now).
func WithCreated(t time.Time) SignOption { return func(s *signer) { s.created = t } }

// WithNonce sets the nonce (default 16 random bytes, base64url).
func WithNonce(nonce string) SignOption { return func(s *signer) { s.nonce = nonce } }

// WithDigest selects the Content-Digest algorithm for a body: DigestSHA256
// (default) or DigestSHA512.
func WithDigest(alg string) SignOption { return func(s *signer) { s.digest = alg } }

type signer struct {
	label   string
	extra   []string
	tag     string
	created time.Time
	nonce   string
	digest  string
	noBody  bool // identity signing: the body is not read or covered
}

// Sign adds an RFC 9421 hmac-sha256 signature to req, an outgoing client
// request with an absolute URL. It covers @method, @target-uri, and, when req
// has a body, content-digest (setting Content-Digest from the body); plus any
// headers named with WithHeaders. Parameters: created, nonce (random),
// keyid, alg="hmac-sha256", and tag if set.
//
// The body is hashed from req.GetBody when set (http.NewRequest sets it for
// in-memory bodies; set it yourself to stream a file twice); otherwise it is
// read into memory and req.Body replaced.
func Sign(req *http.Request, keyid string, key []byte, opts ...SignOption) error {
	s := signer{label: DefaultLabel, digest: DigestSHA256}
	for _, o := range opts {
		o(&s)
	}
	return s.sign(req, keyid, key)
}

func (s *signer) sign(req *http.Request, keyid string, key []byte) error {
	if len(key) < MinKeyBytes {
		return fmt.Errorf("sign: key for %q is %d bytes; at least %d are required", keyid, len(key), MinKeyBytes)
	}
	return s.signWith(req, keyid, AlgHMACSHA256, func(base []byte) []byte { return hmacSHA256(key, base) })
}

// signWith is the algorithm-independent part of signing: components,
// Content-Digest, parameters and the two fields; sum computes the signature
// over the base.
func (s *signer) signWith(req *http.Request, keyid, alg string, sum func(base []byte) []byte) error {
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
	base, err := appendSignatureBase(nil, &m, p)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	input := s.label + "=" + p.serialized
	sig, _ := sfv.MarshalDictionary(sfv.Dictionary{{Key: s.label, Member: sfv.Member{Item: &sfv.Item{Value: sum(base)}}}})
	req.Header.Add("Signature-Input", input)
	req.Header.Add("Signature", sig)
	return nil
}

// checkLabelFree refuses to add a second signature under a label already in
// the request, which every verifier would have to refuse as ambiguous.
func checkLabelFree(h http.Header, label string) error {
	for _, field := range []string{"Signature-Input", "Signature"} {
		v, ok := fieldValue(h, field)
		if !ok {
			continue
		}
		d, err := sfv.ParseDictionary(v)
		if err != nil {
			return fmt.Errorf("sign: existing %s field: %w", field, err)
		}
		if _, dup := d.Get(label); dup {
			return fmt.Errorf("sign: the request already has a signature labelled %q", label)
		}
	}
	if err := sfvKey(label); err != nil {
		return fmt.Errorf("sign: label: %w", err)
	}
	return nil
}

// sfvKey checks that label can be a dictionary key.
func sfvKey(label string) error {
	_, err := sfv.MarshalDictionary(sfv.Dictionary{{Key: label, Member: sfv.Member{Item: &sfv.Item{Value: int64(0)}}}})
	return err
}

func hasOutgoingBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody || req.GetBody != nil && req.ContentLength != 0
}

// setContentDigest hashes the body (from GetBody when possible, so a file
// body is streamed twice rather than held in memory) and sets Content-Digest.
func setContentDigest(req *http.Request, alg string) error {
	var body io.ReadCloser
	if req.GetBody != nil {
		var err error
		if body, err = req.GetBody(); err != nil {
			return fmt.Errorf("reading body: %w", err)
		}
	} else {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return fmt.Errorf("reading body: %w", err)
		}
		req.ContentLength = int64(len(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req.Body, _ = req.GetBody()
		body, _ = req.GetBody()
	}
	defer body.Close()
	d, err := ContentDigest(alg, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Digest", d)
	return nil
}

func randomNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hmacSHA256(key, base []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(base)
	return mac.Sum(nil)
}
