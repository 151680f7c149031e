// Package trail is clawguard's tamper-evident audit trail: a directory of
// JSON-lines files in the state directory, each record chained to the one
// before it by SHA-256, that the gate (pairing decisions) and the sidecar
// (approvals, elevated and refused execs) append to, from several processes
// at once, and that `clawguard audit verify-trail` checks.
//
// It must not import Caddy or any package that writes records: it is below
// every writer.
package trail
