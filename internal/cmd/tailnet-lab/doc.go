// Command tailnet-lab runs an offline tailnet in one process, for tests that
// put clawguard's programs in separate containers: Tailscale's test control
// server (tailscale.com/tstest/integration/testcontrol), a DERP relay and a
// STUN server, all on one address of the host it runs on. Nothing is
// contacted beyond that address's network.
//
//	TAILNET_LAB_AUTH_KEY=… tailnet-lab [--addr IP] [--tags tag:a,tag:b] [--verbose]
//
// Nodes join with the auth key from $TAILNET_LAB_AUTH_KEY (required: the key
// stays out of argv) and --tailnet-control-url / control_url set to the
// printed control URL. The DERP map the control server hands out names
// --addr (default: the host's first non-loopback IPv4 address, a
// container's own address on its network), so every container on that
// network reaches the relay. Tags in --tags may be advertised by nodes
// (testcontrol's TagOwners); without it requested tags are ignored.
//
// Once everything listens it prints one line to stdout,
//
//	tailnet-lab: control http://IP:8080 derp IP:8443 stun IP:3478 magicdns lab.ts.net
//
// (a node's MagicDNS name is <hostname>.lab.ts.net), and it runs until
// SIGINT or SIGTERM. It is a test fixture: the DERP relay's certificate is
// self-signed and the DERP map marks it InsecureForTests.
//
// It imports no package of the module: it is Tailscale's pieces only.
package main
