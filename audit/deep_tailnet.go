package audit

import (
	"context"
	"net"
	"time"

	cgtailnet "github.com/clawguard/clawguard/tsnet"
)

// probeTailnetNodes asks the running Caddy's admin API for its tailnet
// nodes and reports every node that is not up: a failing node does not
// stop the loopback sites, so without this nobody would notice that remote
// access is gone.
func probeTailnetNodes(ctx context.Context, a *auditor) ([]Finding, error) {
	c, admin, err := a.tailnetAdmin()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nodes, err := cgtailnet.FetchHealth(ctx, admin)
	if err != nil {
		return nil, skip("no tailnet status from the running Caddy: " + err.Error())
	}
	if len(nodes) == 0 {
		return nil, skip("no tailnet nodes")
	}
	var out []Finding
	for _, n := range nodes {
		if p := n.Problem(); p != "" {
			out = append(out, Finding{Severity: SeverityWarn, Path: c.path, Finding: p,
				Remedy: "see `clawguard tailnet status` and Caddy's log (logger tailnet); the loopback sites keep serving"})
		}
	}
	return out, nil
}

// probeTailnetPeers asks the running Caddy's admin API for the node hosts
// it watches (the tailnet option's peers) and reports every one that is
// down: the commands routed to it fail until it is back.
func probeTailnetPeers(ctx context.Context, a *auditor) ([]Finding, error) {
	c, admin, err := a.tailnetAdmin()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	peers, err := cgtailnet.FetchPeers(ctx, admin)
	if err != nil {
		return nil, skip("no peer status from the running Caddy: " + err.Error())
	}
	if len(peers) == 0 {
		return nil, skip("no watched node hosts (tailnet peers)")
	}
	var out []Finding
	for _, p := range peers {
		if msg := p.Problem(); msg != "" {
			out = append(out, Finding{Severity: SeverityWarn, Path: c.path, Finding: msg,
				Remedy: "check that the node host " + p.Address + " is running and on the tailnet, that its sidecar serves the health path there (`clawguard sidecar --tailnet`), and that the tailnet policy lets the gate's node " + p.Via + " reach that port; `clawguard tailnet status` shows its last answer"})
		}
	}
	return out, nil
}

// tailnetAdmin returns the adapted config and the host:port of the running
// Caddy's admin endpoint, or a skip saying why there is none.
func (a *auditor) tailnetAdmin() (*caddyConfig, string, error) {
	c, err := a.adapted()
	if err != nil {
		if isSkip(err) {
			return nil, "", err
		}
		return nil, "", skip("no Caddy config")
	}
	if c.adminListen == "" {
		return nil, "", skip("the admin endpoint is off")
	}
	host, port, err := net.SplitHostPort(c.adminListen)
	if err != nil {
		return nil, "", skip("the admin endpoint " + c.adminListen + " is not a host:port address")
	}
	if host == "" {
		host = "localhost"
	}
	return c, net.JoinHostPort(host, port), nil
}
