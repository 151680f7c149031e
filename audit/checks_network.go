package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// openclawPort is the port OpenClaw-style gateways listen on by default;
// behind clawguard the gateway moves and the gate takes this port.
const openclawPort = 18789

// ports is what the config says about the ports this machine serves.
type ports struct {
	admin    uint            // Caddy's admin endpoint; 0 when off or a socket
	gate     map[uint]bool   // ports of servers with a gate
	public   map[uint]bool   // gate ports the config already reports as public
	gateways map[uint]string // ports of upstreams behind a gate, by dial address
}

// configPorts gathers ports from the Caddy config (when it loads) and
// reports the config's own exposures: a public admin endpoint, a gate
// listening beyond loopback and the tailnet.
func configPorts(c *caddyConfig) (ports, []Finding) {
	p := ports{gate: map[uint]bool{}, public: map[uint]bool{}, gateways: map[uint]string{}}
	var out []Finding
	if c == nil {
		p.admin = 2019
		return p, nil
	}
	if c.adminListen != "" {
		if la, err := parseListen(c.adminListen); err == nil {
			p.admin = la.port
			if la.kind == addrPublic || la.kind == addrTailnet {
				out = append(out, Finding{Severity: SeverityCritical, Path: c.path,
					Finding: fmt.Sprintf("Caddy's admin endpoint listens on %s: whoever reaches it can replace the whole config, the gate included", c.adminListen),
					Remedy:  "set `admin localhost:2019` (or `admin off`) in the Caddyfile's global options"})
			}
		}
	}
	for _, s := range c.servers {
		kind, addrs := s.exposure()
		for _, l := range s.listen {
			if len(s.gates) > 0 {
				p.gate[l.port] = true
				if kind == addrPublic {
					p.public[l.port] = true
				}
			}
		}
		if len(s.gates) > 0 && kind == addrPublic {
			out = append(out, Finding{Severity: SeverityWarn, Path: c.path,
				Finding: fmt.Sprintf("server %s (with the gate) listens on %s, beyond loopback and the tailnet", s.name, strings.Join(addrs, ", ")),
				Remedy:  "bind 127.0.0.1 and serve remote clients over the tailnet (bind tailnet/<node>)"})
		}
		for _, dial := range s.upstreams {
			host, port, err := net.SplitHostPort(dial)
			if err != nil {
				continue
			}
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				continue
			}
			if ip, err := netip.ParseAddr(host); (err == nil && ip.IsLoopback()) || host == "localhost" {
				p.gateways[uint(n)] = dial
			}
		}
	}
	if !p.gate[openclawPort] {
		if _, ok := p.gateways[openclawPort]; !ok {
			p.gateways[openclawPort] = "the usual gateway port"
		}
	}
	return p, out
}

func checkOpenInterfaces(_ context.Context, a *auditor) ([]Finding, error) {
	cfg, err := a.adapted()
	var sk skip
	if err != nil && !errors.As(err, &sk) {
		return nil, err
	}
	p, out := configPorts(cfg)
	socks, err := a.listeners()
	if errors.As(err, &sk) {
		if cfg == nil {
			return nil, sk
		}
		return out, nil
	}
	if err != nil {
		return out, err
	}
	// One finding per port and owner: tcp and tcp6 wildcards are one thing.
	type key struct {
		port uint16
		who  string
	}
	groups := map[key][]string{}
	var order []key
	for _, s := range socks {
		if classifyIP(s.addr.Addr()) != addrPublic {
			continue
		}
		who := s.proc
		if who == "" {
			who = "uid " + strconv.Itoa(s.uid)
		}
		k := key{s.addr.Port(), who}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s.addr.String())
	}
	slices.SortFunc(order, func(x, y key) int { return int(x.port) - int(y.port) })
	for _, k := range order {
		port := uint(k.port)
		where := strings.Join(groups[k], ", ")
		f := Finding{Severity: SeverityWarn,
			Finding: fmt.Sprintf("TCP port %d listens on %s (%s): reachable beyond loopback and the tailnet", port, where, k.who),
			Remedy:  fmt.Sprintf("bind it to 127.0.0.1 or the tailnet address, or firewall it; if it is meant to be open, audit with --allow-port %d", port)}
		switch {
		case port == p.admin:
			f.Severity = SeverityCritical
			f.Finding = fmt.Sprintf("Caddy's admin port %d listens on %s (%s): whoever reaches it can replace the config", port, where, k.who)
			f.Remedy = "set `admin localhost:2019` in the Caddyfile's global options and reload"
		case p.gateways[port] != "" && !p.gate[port]:
			f.Severity = SeverityCritical
			f.Finding = fmt.Sprintf("the gateway's port %d (%s) listens on %s (%s): clients can reach the gateway around the gate", port, p.gateways[port], where, k.who)
			f.Remedy = "make the gateway listen on 127.0.0.1 only; clients connect through the gate"
		case p.public[port]:
			continue // reported from the config above
		case slices.Contains(a.opts.AllowPorts, int(port)):
			f.Severity = SeverityInfo
			f.Finding = fmt.Sprintf("TCP port %d listens on %s (%s), allowed by --allow-port", port, where, k.who)
			f.Remedy = "none needed"
		}
		out = append(out, f)
	}
	return out, nil
}
