// Package sidecar is clawguard's sidecar daemon: the HTTP API the gate
// proxies to (on a unix socket, and on a tailnet node when configured), which
// decides exec requests with the exec approvals (package approvals) and runs
// them in Docker sandboxes (package sandbox) or, gated, on the host, with its
// own Prometheus registry and records in the audit trail.
//
// It must not import Caddy, caddymodule or audit: the CLI hands it the
// periodic security audit as DaemonOptions.Background.
package sidecar
