// Package openclawtest is a double of an OpenClaw gateway for tests: a real
// WebSocket server (optionally wss with a fresh self-signed certificate)
// that speaks the node side of OpenClaw's gateway protocol as OpenClaw's
// source has it — the connect challenge, the connect admission (protocol
// range, role, closed connect schema), the device proof (id, 2-minute
// signature skew, nonce, v3 then v2 signature), the shared auth of the
// token, password, none and trusted-proxy modes, device tokens, device
// pairing with pending requests an operator (the test) approves, the
// registry of connected nodes, node.invoke.request / node.invoke.result
// with timeouts, node.invoke.cancel, node.event, ticks and a shutdown
// event on Stop.
//
//	gw := openclawtest.Start(t, openclawtest.Options{Token: "s3cret"})
//	req, _ := gw.WaitPairing(ctx)
//	gw.Approve(req.RequestID)
//	res, _ := gw.Invoke(ctx, nodeID, "system.which", map[string]any{"bins": []string{"sh"}}, 5*time.Second, "k1")
//
// Stop and Restart keep the address, the paired devices and their tokens,
// so tests can take the gateway away under a connected node. SendRaw and
// SetTicks let tests misbehave as a gateway. Handler serves a small JSON
// control API (nodes, pairing, invoke) for programs that run the double
// out of process (internal/cmd/openclaw-double).
//
// It models node clients only: operator sessions, scopes, the node
// command-surface approval (node.pair.*), bootstrap tokens, Tailscale
// identity and rate limits are left out; docs/openclaw-protocol.md lists
// what it checks. It imports openclaw for the wire format and
// internal/testport, wire; nothing above.
package openclawtest
