package httpsig

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"

	"github.com/clawguard/clawguard/httpsig/sfv"
)

// Content-Digest algorithms (RFC 9530 §5) this package computes and checks.
const (
	DigestSHA256 = "sha-256"
	DigestSHA512 = "sha-512"
)

// DefaultMaxBodyBytes is the largest body a Verifier hashes for
// Content-Digest unless configured otherwise. The body is held in memory
// until verified, so the gate can refuse it before anything reaches the
// upstream; only requests with a valid signature get that far.
const DefaultMaxBodyBytes int64 = 10 << 20

func newDigestHash(alg string) (hash.Hash, int, bool) {
	switch alg {
	case DigestSHA256:
		return sha256.New(), sha256.Size, true
	case DigestSHA512:
		return sha512.New(), sha512.Size, true
	}
	return nil, 0, false
}

// ContentDigest reads body and returns the Content-Digest field value for it
// with the given algorithm (DigestSHA256 or DigestSHA512).
func ContentDigest(alg string, body io.Reader) (string, error) {
	h, _, ok := newDigestHash(alg)
	if !ok {
		return "", fmt.Errorf("content digest: unsupported algorithm %q (use %s or %s)", alg, DigestSHA256, DigestSHA512)
	}
	if _, err := io.Copy(h, body); err != nil {
		return "", fmt.Errorf("content digest: reading body: %w", err)
	}
	return sfv.MarshalDictionary(sfv.Dictionary{{Key: alg, Member: sfv.Member{Item: &sfv.Item{Value: h.Sum(nil)}}}})
}

// expectedDigests parses a Content-Digest field value into the digests this
// package can check. Other algorithms are ignored (RFC 9530 §2); none left is
// digest_missing.
func expectedDigests(value string) (map[string][]byte, error) {
	d, err := sfv.ParseDictionary(value)
	if err != nil {
		return nil, refuseErr(CodeDigestMalformed, err, "Content-Digest is not a valid structured field")
	}
	want := map[string][]byte{}
	for _, e := range d {
		_, size, ok := newDigestHash(e.Key)
		if !ok {
			continue
		}
		var sum []byte
		if e.Member.Item != nil {
			sum, _ = e.Member.Item.Value.([]byte)
		}
		if len(sum) != size {
			return nil, refuse(CodeDigestMalformed, "Content-Digest %s must be a %d-byte byte sequence", e.Key, size)
		}
		want[e.Key] = sum
	}
	if len(want) == 0 {
		return nil, refuse(CodeDigestMissing, "Content-Digest has no %s or %s digest", DigestSHA256, DigestSHA512)
	}
	return want, nil
}

// verifyBody reads r's body (at most limit bytes), checks it against the
// Content-Digest field, and on success replaces r.Body with the verified
// bytes so the handler or proxy that follows sees exactly what was checked.
func verifyBody(r *http.Request, limit int64) error {
	v, _ := fieldValue(r.Header, "Content-Digest")
	want, err := expectedDigests(v)
	if err != nil {
		return err
	}
	hashes := make(map[string]hash.Hash, len(want))
	writers := make([]io.Writer, 0, len(want))
	for alg := range want {
		h, _, _ := newDigestHash(alg)
		hashes[alg] = h
		writers = append(writers, h)
	}
	body, err := readBody(r, limit, writers...)
	if err != nil {
		return err
	}
	for alg, h := range hashes {
		if subtle.ConstantTimeCompare(h.Sum(nil), want[alg]) != 1 {
			return refuse(CodeDigestMismatch, "body does not match Content-Digest %s", alg)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// readBody reads r.Body into memory, at most limit bytes, then writes it to
// ws. A declared Content-Length over the limit is refused before reading; a
// known length sizes the buffer once (no intermediate copies: this is the
// hot path for large signed bodies).
func readBody(r *http.Request, limit int64, ws ...io.Writer) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, refuse(CodeBodyTooLarge, "body is %d bytes; the limit is %d", r.ContentLength, limit)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	size := int64(512)
	if r.ContentLength >= 0 {
		size = r.ContentLength + 1 // +1: room to see the end without growing
	}
	buf := make([]byte, 0, size)
	body := io.LimitReader(r.Body, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, refuse(CodeBodyTooLarge, "body exceeds the limit of %d bytes", mbe.Limit)
		}
		if err != nil {
			return nil, refuseErr(CodeBodyUnreadable, err, "reading the body")
		}
	}
	if int64(len(buf)) > limit {
		return nil, refuse(CodeBodyTooLarge, "body exceeds the limit of %d bytes", limit)
	}
	for _, w := range ws {
		w.Write(buf) // hashes: never fail
	}
	return buf, nil
}

// bodyIsEmpty tells whether a body of unknown length (chunked) is empty by
// reading one byte; an empty body is replaced by http.NoBody.
func bodyIsEmpty(r *http.Request) (bool, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return true, nil
	}
	var one [1]byte
	n, err := io.ReadFull(r.Body, one[:])
	if n == 1 {
		return false, nil
	}
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return false, refuseErr(CodeBodyUnreadable, err, "reading the body")
	}
	r.Body.Close()
	r.Body = http.NoBody
	return true, nil
}
