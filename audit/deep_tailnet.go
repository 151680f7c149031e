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
	c, err := a.adapted()
	if err != nil {
		if isSkip(err) {
			return nil, err
		}
		return nil, skip("no Caddy config")
	}
	if c.adminListen == "" {
		return nil, skip("the admin endpoint is off")
	}
	host, port, err := net.SplitHostPort(c.adminListen)
	if err != nil {
		return nil, skip("the admin endpoint " + c.adminListen + " is not a host:port address")
	}
	if host == "" {
		host = "localhost"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nodes, err := cgtailnet.FetchHealth(ctx, net.JoinHostPort(host, port))
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
