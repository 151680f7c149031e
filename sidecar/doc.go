// Package sidecar is clawguard's sidecar daemon: the HTTP API the gate
// proxies to (on a unix socket, and on a tailnet node when configured), which
// decides exec requests with the exec approvals (package approvals) and runs
// them in Docker sandboxes (package sandbox) or, gated, on the host — elevated
// on the gateway host (target "host", gateway_host), or on a node's own host
// (target "node", node_exec) — with its own Prometheus registry and records in
// the audit trail. A program that runs the daemon inside itself gets the
// Server through DaemonOptions.OnServer and sends commands down the same path
// as POST /v1/exec with Server.Exec.
//
// It must not import Caddy, caddymodule or audit: the CLI hands it the
// periodic security audit as DaemonOptions.Background.
package sidecar
