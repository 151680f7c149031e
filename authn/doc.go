// Package authn holds the gate's authentication logic without any Caddy
// dependency: credential parsing, shared tokens, bcrypt passwords (with their
// cache), trusted proxies, local trust, identities and the rate limiter. The
// Caddy handler in caddymodule wires these together; keeping them here makes
// each testable on its own.
//
// It must not import Caddy or any clawguard package above wire.
package authn
