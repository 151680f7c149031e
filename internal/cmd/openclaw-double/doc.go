// Command openclaw-double runs the OpenClaw gateway double of package
// openclaw/openclawtest as a process, for tests that put it in a container
// or on another host:
//
//	OPENCLAW_GATEWAY_TOKEN=s3cret openclaw-double -listen 0.0.0.0:18789 -control 127.0.0.1:18790
//
// It prints one JSON line on stdout when it serves —
// {"gateway": "ws://…", "control": "http://…", "fingerprint": "…"} (the
// fingerprint with -tls only) — logs to stderr, and stops on SIGINT or
// SIGTERM.
//
// Flags:
//
//	-listen ADDR           the gateway's WebSocket (default 127.0.0.1:18789)
//	-control ADDR          the control API (default 127.0.0.1:18790)
//	-tls                   wss with a self-signed certificate made at start
//	-tick DURATION         policy.tickIntervalMs and the tick period (default 15s)
//	-max-payload BYTES     policy.maxPayload (default 25 MiB)
//	-trusted-proxies LIST  trusted-proxy auth: comma-separated IPs or CIDRs (gateway.trustedProxies)
//	-user-header NAME      trusted-proxy: the header with the user (default x-forwarded-user)
//	-required-headers LIST trusted-proxy: headers that must be present
//	-allow-users LIST      trusted-proxy: the only users admitted
//	-allow-loopback        trusted-proxy: admit a proxy on a loopback address
//
// Secrets come from the environment, never from flags: OPENCLAW_GATEWAY_TOKEN
// and OPENCLAW_GATEWAY_PASSWORD (OpenClaw's own names; password wins when
// both are set) and OPENCLAW_DOUBLE_CONTROL_TOKEN, the bearer token of the
// control API. A control address that is not loopback is refused without
// that token.
//
// The control API (JSON in and out; errors {"error", "code"}):
//
//	GET  /nodes              {"nodes": [{"node_id", "conn_id", "client_id", "mode", "display_name",
//	                          "platform", "version", "caps", "commands", "protocol", "auth_method",
//	                          "user", "remote_addr", "connected_at", "connects"}…]}
//	GET  /devices            {"devices": [{"device_id", "public_key", "display_name", "platform",
//	                          "client_id", "roles", "approved_at"}…]}
//	GET  /pairing            {"pending": [{"request_id", "device_id", "public_key", "display_name",
//	                          "platform", "client_id", "role", "reason", "remote_addr", "created_at"}…]}
//	POST /pairing/approve    {"request_id"} → {"ok": true}
//	POST /pairing/reject     {"request_id"} → {"ok": true}
//	POST /invoke             {"node_id", "command", "params", "timeout_ms", "idempotency_key"}
//	                         → {"id", "ok", "payload", "error": {"code", "message"}}
//	GET  /received?method=M  {"received": [{"method", "params", "late", "at"}…]}
//
// It is a test tool: it imports openclaw/openclawtest and is imported by
// nothing.
package main
