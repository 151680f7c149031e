// Package tsnet runs embedded Tailscale nodes (tailscale.com/tsnet) for
// clawguard without any Caddy dependency: node lifetime shared by every
// listener and dialer of a name, listeners and dialers on a node, Identify
// (who a tailnet peer is, by WhoIs), the allow policy over users and tags,
// and Health with clawguard_tailnet_node_up. The gate uses it through
// caddymodule/tailnet; the sidecar uses it directly to serve its API on a
// tailnet.
//
// It must not import Caddy or any clawguard package but internal/secretref
// and statedir.
package tsnet
