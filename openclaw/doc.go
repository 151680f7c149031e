// Package openclaw is clawguard's client of OpenClaw's gateway protocol as
// a headless node host: a Node connects to an OpenClaw gateway's WebSocket
// (directly, through the clawguard gate, or over a tailnet dialer), proves
// its Ed25519 device identity over the gateway's connect challenge, waits
// for pairing, keeps the device token it is issued, advertises
// system.run.prepare, system.run and system.which, and answers each
// node.invoke.request through a Handler — clawguard's exec approvals and
// sandboxes, which live elsewhere.
//
//	node := &openclaw.Node{
//		Gateway:      "wss://gateway.example.ts.net",
//		Token:        token, // resolved from the vault
//		Identity:     key,
//		DeviceTokens: store,
//		Handler:      handler,
//	}
//	err := node.Run(ctx) // reconnects until ctx ends
//
// What the package owns: the wire format (frames, connect params,
// hello-ok, the invoke payloads and the typed params and results of the
// system commands, field names as OpenClaw spells them, camelCase), the
// v3/v2 device signature, the handshake and its refusals (ConnectError),
// reconnect with jittered backoff, the tick watchdog, the bounds on every
// frame read (MaxPreConnectFrame before hello-ok, the gateway's maxPayload
// capped at MaxFrame after), TLS fingerprint pinning, and the idempotency
// table that keeps an invoke from running twice across reconnects
// (ResultTTL, MaxExecutions, MaxRunning, MaxOutbox).
//
// docs/openclaw-protocol.md describes the subset of the protocol
// implemented and the OpenClaw sources it was read from; the package
// openclaw/openclawtest is a gateway double for tests.
//
// It must not import Caddy or any clawguard package: the Handler and the
// TokenStore are how the sidecar and the vault reach it.
package openclaw
