// Package stack starts clawguard as a user runs it — the built `clawguard up`
// with its sidecar and Caddy as processes — for the end-to-end tests and
// bench/load, and stops it.
//
// It imports only internal/testport of the module: it drives the programs
// from the outside.
package stack
