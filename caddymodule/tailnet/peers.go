package tailnet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/clawguard/clawguard/tsnet"
)

// PeerConfig is a node host the gate watches (JSON
// apps.tailnet.peers.<name>): a health probe over the tailnet every
// interval, reported by GET /tailnet/peers, the clawguard_tailnet_peer_*
// metrics, `clawguard tailnet status` and `clawguard audit`.
type PeerConfig struct {
	// Address is the node host's health endpoint on the tailnet:
	// host:port with a MagicDNS name or a tailnet IP (100.64.0.0/10,
	// fd7a:115c:a1e0::/48), no scheme, no path. Required.
	Address string `json:"address"`

	// Via is the tailnet node to dial through. Default: the only node
	// the app declares; required when it declares none or several.
	Via string `json:"via,omitempty"`

	// Interval is the time between probes, at least 1s. Default: 10s.
	Interval caddy.Duration `json:"interval,omitempty"`

	// Timeout bounds one probe (dial, request, answer); it must be
	// shorter than Interval. Default: 3s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Path is what the probe GETs; a 200 means up. Default: /healthz.
	Path string `json:"path,omitempty"`
}

// spec returns the peer's tsnet.PeerSpec with its defaults; via stays ""
// when it is not set (see viaDefault).
func (p PeerConfig) spec(name string) tsnet.PeerSpec {
	return tsnet.PeerSpec{
		Name:     name,
		Address:  p.Address,
		Via:      p.Via,
		Interval: time.Duration(p.Interval),
		Timeout:  time.Duration(p.Timeout),
		Path:     p.Path,
	}.WithDefaults()
}

// viaDefault is the node a peer without via dials through: the only
// declared node.
func viaDefault(peer string, nodes map[string]tsnet.NodeConfig) (string, error) {
	names := slices.Sorted(maps.Keys(nodes))
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", fmt.Errorf("peer %s: via: required, as no node is declared (node <name> { … })", peer)
	default:
		return "", fmt.Errorf("peer %s: via: required, as several nodes are declared (%s): name the one to dial through", peer, strings.Join(names, ", "))
	}
}

// peerSpecs validates the app's peers and fills in their defaults.
func (a *App) peerSpecs() ([]tsnet.PeerSpec, error) {
	var out []tsnet.PeerSpec
	for _, name := range slices.Sorted(maps.Keys(a.Peers)) {
		s := a.Peers[name].spec(name)
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if s.Via == "" {
			via, err := viaDefault(name, a.Nodes)
			if err != nil {
				return nil, err
			}
			s.Via = via
		}
		out = append(out, s)
	}
	return out, nil
}

// startPeers starts (or, after a reload with the same spec, joins) the
// watch of every peer.
func (a *App) startPeers() error {
	for _, s := range a.peers {
		ns, err := a.nodes.Get(s.Via, a.StateDir)
		if err != nil {
			a.stopPeers()
			return fmt.Errorf("tailnet: peer %s: %w", s.Name, err)
		}
		w, err := tsnet.WatchPeer(s, ns, a.log)
		if err != nil {
			a.stopPeers()
			return fmt.Errorf("tailnet: %w", err)
		}
		a.watches = append(a.watches, w)
	}
	return nil
}

// stopPeers releases this config's watches; one the next config joined
// keeps probing.
func (a *App) stopPeers() {
	for _, w := range a.watches {
		w.Close()
	}
	a.watches = nil
}
