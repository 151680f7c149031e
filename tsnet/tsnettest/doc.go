// Package tsnettest runs an offline tailnet for tests, as tailscale.com's
// own tsnet tests do: Tailscale's test control server
// (tstest/integration/testcontrol) and a DERP relay on 127.0.0.1, and
// plain tsnet nodes as clients. Nothing leaves the machine.
//
// It is for tests: it imports tsnet and nothing above it.
package tsnettest
