package caddymodule

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/clawguard/clawguard/caddymodule/tailnet"
	"github.com/clawguard/clawguard/internal/secretref"
	cgtailnet "github.com/clawguard/clawguard/tsnet"
)

func init() {
	caddy.RegisterModule(TailnetTransport{})
}

// TailnetTransport is the reverse_proxy transport `clawguard_tailnet`:
// clawguard_signed (the gate's identity signed for the upstream) over
// connections dialed through one of this Caddy's tailnet nodes. It is how
// the gate host reaches a sidecar that listens on the tailnet on another
// host (`clawguard sidecar --tailnet`), with no port open anywhere else:
//
//	reverse_proxy sidecar-host:8443 {
//	    transport clawguard_tailnet gate {
//	        identity_key gate1 {vault.sidecar_identity}
//	    }
//	}
//
// Upstream addresses are tailnet IPs or MagicDNS names, resolved by the
// node. The node's settings come from the `tailnet` global option; the
// transport keeps the node running (also without any site bound to it).
type TailnetTransport struct {
	SignedTransport

	// Node is the name of the tailnet node to dial through (as in
	// `tailnet { node <name> { … } }` and bind tailnet/<name>). Required.
	Node string `json:"node"`

	dialer *cgtailnet.Dialer
}

// CaddyModule returns the Caddy module information.
func (TailnetTransport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport.clawguard_tailnet",
		New: func() caddy.Module { return new(TailnetTransport) },
	}
}

// Provision provisions the signed transport, then sends its connections
// through the node.
func (t *TailnetTransport) Provision(ctx caddy.Context) error {
	if err := cgtailnet.ValidNodeName(t.Node); err != nil {
		return fmt.Errorf("clawguard_tailnet: node: %w", err)
	}
	if err := t.checkDialOptions(); err != nil {
		return err
	}
	if err := t.SignedTransport.Provision(ctx); err != nil {
		return err
	}
	app, err := ctx.App("tailnet")
	if err != nil {
		return fmt.Errorf("clawguard_tailnet: %w", err)
	}
	if t.dialer, err = app.(*tailnet.App).Dialer(t.Node); err != nil {
		return fmt.Errorf("clawguard_tailnet: %w", err)
	}
	d, timeout := t.dialer, time.Duration(t.DialTimeout)
	tr := t.HTTPTransport.Transport
	tr.Proxy = nil // HTTP(S)_PROXY is for the host's network, not the tailnet
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		c, err := d.Dial(ctx, network, addr)
		if err != nil {
			// A dial error lets reverse_proxy retry another upstream.
			return nil, reverseproxy.NewDialError(err)
		}
		return c, nil
	}
	return nil
}

// checkDialOptions refuses the http transport options that act in Caddy's
// own dialer, which a tailnet node replaces: silently dropping them would
// surprise.
func (t *TailnetTransport) checkDialOptions() error {
	h := &t.HTTPTransport
	var bad []string
	if h.ProxyProtocol != "" {
		bad = append(bad, "proxy_protocol")
	}
	if h.LocalAddress != "" {
		bad = append(bad, "local_address")
	}
	if h.ForwardProxyURL != "" || len(h.NetworkProxyRaw) > 0 {
		bad = append(bad, "forward_proxy_url/network_proxy")
	}
	if h.Resolver != nil {
		bad = append(bad, "resolvers (the node resolves MagicDNS names)")
	}
	if h.ReadTimeout != 0 || h.WriteTimeout != 0 {
		bad = append(bad, "read_timeout/write_timeout")
	}
	if h.FallbackDelay != 0 {
		bad = append(bad, "dial_fallback_delay")
	}
	if slices.Contains(h.Versions, "h2c") || slices.Contains(h.Versions, "3") {
		bad = append(bad, "versions h2c and 3")
	}
	if h.TLS != nil && strings.Contains(h.TLS.ServerName, "{") {
		bad = append(bad, "tls_server_name with a placeholder")
	}
	if len(bad) > 0 {
		return fmt.Errorf("clawguard_tailnet: %s: not supported on connections dialed through a tailnet node", strings.Join(bad, ", "))
	}
	return nil
}

// Cleanup releases the node (it stops with its last user) and the
// transport's idle connections.
func (t *TailnetTransport) Cleanup() error {
	err := t.SignedTransport.Cleanup()
	if t.dialer != nil {
		t.dialer.Close()
	}
	return err
}

// UnmarshalCaddyfile sets up the transport from Caddyfile tokens:
//
//	transport clawguard_tailnet <node> {
//	    identity_key <keyid> <secret>
//	    state_dir <path>
//	    <options of transport http, except those of the dialer>
//	}
func (t *TailnetTransport) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // transport name
	rest := []caddyfile.Token{d.Token()}
	if !d.NextArg() {
		return d.Err("clawguard_tailnet: want the node to dial through: transport clawguard_tailnet <node> { identity_key … }")
	}
	t.Node = d.Val()
	if err := cgtailnet.ValidNodeName(t.Node); err != nil {
		return d.Errf("clawguard_tailnet: %v", err)
	}
	if d.NextArg() {
		return secretref.ArgErr(d, "clawguard_tailnet", "takes one node name and a block")
	}
	// The rest is clawguard_signed's block, tokens and lines intact.
	for d.Next() {
		rest = append(rest, d.Token())
	}
	return t.SignedTransport.UnmarshalCaddyfile(caddyfile.NewDispenser(rest))
}

// Interface guards
var (
	_ caddy.Provisioner     = (*TailnetTransport)(nil)
	_ caddy.CleanerUpper    = (*TailnetTransport)(nil)
	_ caddyfile.Unmarshaler = (*TailnetTransport)(nil)
)
