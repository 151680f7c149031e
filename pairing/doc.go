// Package pairing is clawguard's device pairing (docs/design.md, "Device
// pairing") without any Caddy dependency: the protocol messages and their
// checks, the challenge nonces, the device store in the state directory, the
// HTTP handlers of the pairing endpoints and the admin API, the embedded web
// UI, and the tracking of live connections that revocation ends. The gate
// (caddymodule) routes /.clawguard/* here after deciding who the caller is;
// decisions go back to it through Config.OnDecision (for the audit trail).
//
// It must not import Caddy, authn or trail: the gate passes what it decided
// (Caller) in, and takes decisions out through hooks.
package pairing
