package tsnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"tailscale.com/net/tsaddr"
)

// Dial connects to address (host:port) over the tailnet, and only there:
// while the node is not up it waits until ctx ends (the error then says
// what state the node is in). A name is looked up only
// among the tailnet's own nodes (the node's view of the tailnet, by
// MagicDNS name or its first label), and an IP must be a tailnet IP. tsnet's
// own Dial falls back to the host's DNS for a name the tailnet does not
// know and dials the answer, or a non-tailnet IP, over the host's network:
// for a peer that has left the tailnet that would hand the gate's signed
// identity to whoever answers for the name on the LAN.
func (d *Dialer) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dialing %s over tailnet node %s: %w", address, d.n.name, err)
	}
	if err := d.wait(ctx, address); err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if ip, err = d.lookup(ctx, host); err != nil {
			return nil, fmt.Errorf("dialing %s over tailnet node %s: %w", address, d.n.name, err)
		}
	}
	if !tsaddr.IsTailscaleIP(ip) {
		return nil, fmt.Errorf("dialing %s over tailnet node %s: %s is not a tailnet address", address, d.n.name, ip)
	}
	return d.dial(ctx, network, net.JoinHostPort(ip.String(), port))
}

// lookup finds the tailnet IP of the node called host (a MagicDNS name,
// full or short) in the node's view of the tailnet, IPv4 first.
func (d *Dialer) lookup(ctx context.Context, host string) (netip.Addr, error) {
	// A context of its own, ending with ctx: the caller's values (an
	// httptrace of the request being dialed for) are not this request's.
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	st, err := d.n.lc.Status(sctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("looking up %s among the tailnet's nodes: %w", host, err)
	}
	want := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range st.Peer {
		name := strings.ToLower(strings.TrimSuffix(p.DNSName, "."))
		short, _, _ := strings.Cut(name, ".")
		if name == "" || (want != name && want != short) || len(p.TailscaleIPs) == 0 {
			continue
		}
		ips := p.TailscaleIPs
		for _, ip := range ips {
			if ip.Is4() {
				return ip, nil
			}
		}
		return ips[0], nil
	}
	return netip.Addr{}, fmt.Errorf("%s is not a node of the tailnet (not in node %s's view of it)", host, d.n.name)
}
