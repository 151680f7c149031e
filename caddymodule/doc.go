// Package caddymodule is clawguard's Caddy glue: the `clawguard` HTTP
// handler (directive `clawguard`), the `clawguard` app the handlers share
// (its admin listener), Caddyfile parsing, provisioning, the admin routes,
// the signed and tailnet reverse_proxy transports, and metrics registration.
//
// What it wires together lives below it and is Caddy-free: authn (who a
// request is), pairing (devices), trail (the audit trail), httpsig, tsnet,
// vault and wire. Nothing below caddymodule imports Caddy; no package of the
// module but the root registration package and programs imports caddymodule.
package caddymodule
