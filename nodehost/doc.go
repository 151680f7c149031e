// Package nodehost serves an OpenClaw gateway's invokes with clawguard's
// sidecar: the commands of a headless node host (system.run.prepare,
// system.run, system.which) become the sidecar's exec requests, judged by
// this node's exec approvals and run in a sandbox or, where the approvals
// say so, on this host (target "node"). `clawguard node` wires it between
// package openclaw (the connection) and package sidecar (the exec path).
//
// It must not import Caddy or caddymodule, and it holds no policy of its
// own: every decision is the sidecar's.
package nodehost
