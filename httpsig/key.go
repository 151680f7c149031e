package httpsig

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// KeyBase64Prefix marks a key written as base64 rather than used as is.
const KeyBase64Prefix = "base64:"

// ParseKey turns a key as written in a Caddyfile, the vault, an environment
// variable or a key file into the HMAC secret. The one rule, shared by the
// gate and `clawguard sign`:
//
//   - "base64:" followed by standard or URL-safe base64 (padding optional) is
//     decoded, for binary keys such as RFC 9421's test key;
//   - anything else is used as its bytes, as is;
//   - in both cases one trailing newline (LF or CRLF) is dropped first, so
//     `echo secret > file` and a value typed into the vault work.
//
// The result must be at least MinKeyBytes long.
func ParseKey(s []byte) ([]byte, error) {
	v := string(s)
	v = strings.TrimSuffix(v, "\n")
	v = strings.TrimSuffix(v, "\r")
	key := []byte(v)
	if enc, ok := strings.CutPrefix(v, KeyBase64Prefix); ok {
		enc = strings.TrimRight(enc, "=")
		var err error
		if strings.ContainsAny(enc, "-_") {
			key, err = base64.RawURLEncoding.DecodeString(enc)
		} else {
			key, err = base64.RawStdEncoding.DecodeString(enc)
		}
		if err != nil {
			return nil, fmt.Errorf("key: after %q: invalid base64: %w", KeyBase64Prefix, err)
		}
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("key: %d bytes; at least %d are required (e.g. `openssl rand -base64 48`)", len(key), MinKeyBytes)
	}
	return key, nil
}
