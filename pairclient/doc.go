// Package pairclient is the device side of clawguard's pairing (docs/design.md,
// "Device pairing"): it pairs an Ed25519 identity with a gate, and connects
// to the gateway behind it with the device token, over HTTP or WebSocket,
// optionally signing every request with the device key (RFC 9421 ed25519)
// for gates with require_device_signature.
//
//	key, _ := pairclient.GenerateKey()
//	res, err := pairclient.Pair(ctx, pairclient.Options{Gateway: "http://127.0.0.1:18789", Name: "laptop", Key: key})
//	// keep res.Token secret (a vault), then:
//	client := pairclient.HTTPClient(res.Token, nil)
//	conn, _, err := pairclient.Dial(ctx, "ws://127.0.0.1:18789/ws", res.Token, nil, nil)
//
// It must not import Caddy or the gate: it is what a device runs. It imports
// pairing for the message formats and httpsig for device signatures.
package pairclient
