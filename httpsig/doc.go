// Package httpsig signs and verifies HTTP requests with HTTP Message
// Signatures (RFC 9421) — hmac-sha256 with shared keys, ed25519 with a paired
// device's key — and Content-Digest
// (RFC 9530, sha-256 and sha-512). It has no Caddy dependency: the gate, the
// sidecar and `clawguard sign` all use it.
//
// Clients call Sign. The gate builds a Verifier with NewVerifier and calls
// Verify for every request; a refusal is an *Error with a stable Code and an
// HTTPStatus. The rules (docs/design.md, "Gate"):
//
//   - covered components must include @method and @target-uri (or
//     @authority, @path and @query), and content-digest when there is a body;
//     the Content-Digest must match the body, read up to a size limit;
//   - created is required, at most max_age old and at most 5 s ahead;
//     expires, if present, must not have passed;
//   - nonce is required and may not be used twice within max_age;
//   - alg, if present, must be hmac-sha256; keyid must name a configured key.
//
// Identity mode (Config.Identity, SignIdentity, IdentityTransport) lets the
// gate sign the X-Clawguard-* identity headers it sends upstream, so the
// sidecar can tell them from forgeries.
package httpsig
