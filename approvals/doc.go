// Package approvals decides whether an agent may execute a command: the
// per-node approvals file (docs/design.md, "Exec approvals"), policy
// evaluation on the resolved program, the queue of requests that wait for a
// person, and the HTTP API people answer them through.
//
// It must not import Caddy, the sidecar, the sandbox or the gate: the sidecar
// and the CLI call it, with their own I/O.
package approvals
