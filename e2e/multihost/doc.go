// Package multihost tests clawguard across hosts: the gateway host and two
// node hosts as separate containers of the project's own static binaries
// on a private (internal) Docker network, joined by a tailnet whose control
// server, DERP relay and STUN server run in a fourth container
// (internal/cmd/tailnet-lab). The test process joins that tailnet as a
// client, reaches each node through the gate, then stops one node host and
// cuts another off the network and checks that the gate fails fast and
// the surviving node keeps serving. See docs/multihost.md.
//
// It is a test-only package: it drives the built programs from the outside
// (the docker CLI, the tailnet) and imports the module's test helpers only.
package multihost
