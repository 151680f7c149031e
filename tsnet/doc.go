// Package tsnet runs embedded Tailscale nodes (tailscale.com/tsnet) for
// clawguard without any Caddy dependency: node lifetime shared by every
// listener and dialer of a name, listeners and dialers on a node, Identify
// (who a tailnet peer is, by WhoIs), the allow policy over users and tags,
// Health with clawguard_tailnet_node_up, and the watch of node hosts
// (WatchPeer: a health probe over the tailnet every interval, Peers and the
// clawguard_tailnet_peer_* metrics). The gate uses it through
// caddymodule/tailnet; the sidecar uses it directly to serve its API on a
// tailnet.
//
// It must not import Caddy or any clawguard package but wire,
// internal/secretref and statedir.
package tsnet
