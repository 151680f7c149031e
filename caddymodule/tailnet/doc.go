// Package tailnet is the Caddy side of tsnet: the `tailnet` app (Caddyfile
// global option `tailnet { node <name> { … } peer <name> <host:port> { … } }`),
// the `tailnet` network that makes `bind tailnet/<node>` serve on a tailnet
// node only, the inert HTTP/3 network Caddy asks for, and the admin routes
// GET /tailnet/nodes and GET /tailnet/peers.
//
// A node that is slow or failing never blocks or fails the rest of the
// config: its listener accepts once the node is up, and Health, the admin API
// and clawguard_tailnet_node_up report its state. One node per name is shared
// by every listener and config that uses it, so `caddy reload` keeps it up;
// likewise a watched peer whose settings a reload keeps keeps its history.
//
// The nodes themselves, identity and policy are package tsnet, which this
// package only configures.
package tailnet
