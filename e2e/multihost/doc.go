// Package multihost tests clawguard across hosts: the gateway host (Caddy
// with the gate, and an OpenClaw gateway double on its loopback) and two
// node hosts (`clawguard node`) as separate containers of the project's own
// static binaries on a private (internal) Docker network, joined by a
// tailnet whose control server, DERP relay and STUN server run in a
// container of their own (internal/cmd/tailnet-lab). The test process
// joins that tailnet as a client, reaches each node host through the gate
// and through the OpenClaw gateway, then stops one node host and cuts
// another off the network: the gate's watch reports each, requests for
// them fail within their timeouts, and the surviving node host keeps
// serving. See docs/multihost.md.
//
// It is a test-only package: it drives the built programs from the outside
// (the docker CLI, the tailnet); its tests import the module's test helpers
// and the packages whose types they read off the wire (sidecar, tsnet,
// openclaw, wire), never the code under test's internals.
package multihost
