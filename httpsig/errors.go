package httpsig

import (
	"errors"
	"fmt"
	"net/http"
)

// Refusal codes: stable, machine-readable reasons a Verifier refuses a
// request. The gate puts them in its JSON error body as "code".
const (
	CodeSignatureMissing   = "signature_missing"   // no Signature-Input/Signature, or not the configured label
	CodeSignatureMalformed = "signature_malformed" // a field is not valid RFC 8941, a parameter or component is invalid or unsupported
	CodeSignatureAmbiguous = "signature_ambiguous" // a label appears twice, or several signatures and no label configured
	CodeUnknownKey         = "unknown_key"         // keyid missing or not in the key set
	CodeBadAlg             = "bad_alg"             // alg parameter present and not hmac-sha256
	CodeBadSignature       = "bad_signature"       // the HMAC does not match the signature base
	CodeCoverage           = "coverage"            // a required component is not covered
	CodeCreatedMissing     = "created_missing"     // no created parameter
	CodeNonceMissing       = "nonce_missing"       // no nonce parameter
	CodeExpired            = "expired"             // created older than max_age, expires passed, or before the replay horizon
	CodeFuture             = "future"              // created more than 5 s ahead
	CodeReplay             = "replay"              // nonce already used within max_age
	CodeReplayCacheFull    = "replay_cache_full"   // the replay cache had to shed nonces this new; sign again
	CodeDigestMissing      = "digest_missing"      // a body without a covered Content-Digest, or no sha-256/sha-512 in it
	CodeDigestMalformed    = "digest_malformed"    // Content-Digest is not a valid dictionary of byte sequences
	CodeDigestMismatch     = "digest_mismatch"     // the body does not match Content-Digest
	CodeBodyTooLarge       = "body_too_large"      // the body exceeds the configured limit (413)
	CodeBodyUnreadable     = "body_unreadable"     // reading the body failed (client went away)
)

// Error is a refusal: a stable Code, a Message safe to show the client (it
// never contains key material), and the underlying cause if any.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	return "httpsig: " + e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status the gate answers with: 413 for body_too_large, 400
// for body_unreadable, 503 for replay_cache_full (a capacity limit, not a
// credential problem), 401 for everything else.
func (e *Error) HTTPStatus() int {
	switch e.Code {
	case CodeBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeBodyUnreadable:
		return http.StatusBadRequest
	case CodeReplayCacheFull:
		return http.StatusServiceUnavailable
	default:
		return http.StatusUnauthorized
	}
}

// CodeOf returns err's refusal code, or "" when err is not an *Error.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func refuse(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func refuseErr(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...) + ": " + err.Error(), Err: err}
}
