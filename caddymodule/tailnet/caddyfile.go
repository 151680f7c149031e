package tailnet

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/clawguard/clawguard/internal/secretref"
	"github.com/clawguard/clawguard/tsnet"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("tailnet", parseGlobalOption)
}

// parseGlobalOption parses the `tailnet` global option into the tailnet app:
//
//	tailnet {
//	    state_dir <path>
//	    node <name> {
//	        auth_key    {env.TS_AUTHKEY} | {vault.NAME} | {file./path}
//	        control_url <url>
//	        hostname    <name>
//	        state_dir   <path>
//	        ephemeral
//	        tags        <tag:name>...
//	    }
//	    peer <name> <host:port> {
//	        via      <node>
//	        interval <duration>
//	        timeout  <duration>
//	        path     <path>
//	    }
//	}
//
// Several tailnet blocks merge; a node or a peer may be defined once.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := App{Nodes: map[string]tsnet.NodeConfig{}, Peers: map[string]PeerConfig{}}
	if prev, ok := existing.(httpcaddyfile.App); ok {
		if err := json.Unmarshal(prev.Value, &app); err != nil {
			return nil, fmt.Errorf("tailnet: merging blocks: %w", err)
		}
		if app.Nodes == nil {
			app.Nodes = map[string]tsnet.NodeConfig{}
		}
		if app.Peers == nil {
			app.Peers = map[string]PeerConfig{}
		}
	}
	for d.Next() {
		if d.NextArg() {
			return nil, secretref.ArgErr(d, "tailnet", "takes a block, no arguments")
		}
		for d.NextBlock(0) {
			switch d.Val() {
			case "state_dir":
				if !d.AllArgs(&app.StateDir) {
					return nil, secretref.ArgErr(d, "tailnet state_dir", "takes one path")
				}
			case "node":
				var name string
				if !d.AllArgs(&name) {
					return nil, secretref.ArgErr(d, "tailnet node", "takes one name and a block")
				}
				nc, err := parseNode(d)
				if err != nil {
					return nil, err
				}
				if err := nc.Validate(name); err != nil {
					return nil, d.Errf("tailnet: %v", err)
				}
				if _, dup := app.Nodes[name]; dup {
					return nil, d.Errf("tailnet: node %s defined twice", name)
				}
				app.Nodes[name] = nc
			case "peer":
				var name, addr string
				if !d.AllArgs(&name, &addr) {
					return nil, secretref.ArgErr(d, "tailnet peer", "takes a name, a host:port and an optional block")
				}
				pc, err := parsePeer(d, addr)
				if err != nil {
					return nil, err
				}
				if err := pc.spec(name).Validate(); err != nil {
					return nil, d.Errf("tailnet: %v", err)
				}
				if _, dup := app.Peers[name]; dup {
					return nil, d.Errf("tailnet: peer %s defined twice", name)
				}
				app.Peers[name] = pc
			default:
				return nil, d.Errf("tailnet: unknown option %s (want state_dir, node or peer)", secretref.Quote(d.Val()))
			}
		}
		// Nodes only accumulate over blocks, so a peer without via
		// among several nodes is ambiguous for good (none declared yet
		// may still be fixed by a later block, and is checked on load).
		if len(app.Nodes) > 1 {
			for _, name := range slices.Sorted(maps.Keys(app.Peers)) {
				if app.Peers[name].Via == "" {
					_, err := viaDefault(name, app.Nodes)
					return nil, d.Errf("tailnet: %v", err)
				}
			}
		}
	}
	if len(app.Peers) == 0 {
		app.Peers = nil
	}
	return httpcaddyfile.App{Name: "tailnet", Value: caddyconfig.JSON(app, nil)}, nil
}

// parsePeer parses the optional block of `peer <name> <host:port> { … }`.
func parsePeer(d *caddyfile.Dispenser, addr string) (PeerConfig, error) {
	pc := PeerConfig{Address: addr}
	for d.NextBlock(1) {
		opt := d.Val()
		oneArg := func(dst *string) error {
			if !d.AllArgs(dst) {
				return secretref.ArgErr(d, "tailnet peer "+opt, "takes one value")
			}
			return nil
		}
		var err error
		switch opt {
		case "via":
			err = oneArg(&pc.Via)
		case "interval":
			pc.Interval, err = durationArg(d, opt, oneArg)
		case "timeout":
			pc.Timeout, err = durationArg(d, opt, oneArg)
		case "path":
			err = oneArg(&pc.Path)
		default:
			err = d.Errf("tailnet peer: unknown option %s (want via, interval, timeout or path)", secretref.Quote(opt))
		}
		if err != nil {
			return PeerConfig{}, err
		}
	}
	return pc, nil
}

// durationArg reads the one value of a peer's duration option.
func durationArg(d *caddyfile.Dispenser, opt string, oneArg func(*string) error) (caddy.Duration, error) {
	var val string
	if err := oneArg(&val); err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(val)
	if err != nil {
		return 0, d.Errf("tailnet peer %s: %s: want a duration such as 10s", opt, secretref.Quote(val))
	}
	return caddy.Duration(dur), nil
}

// parseNode parses the block of `node <name> { … }`.
func parseNode(d *caddyfile.Dispenser) (tsnet.NodeConfig, error) {
	var nc tsnet.NodeConfig
	for d.NextBlock(1) {
		opt := d.Val()
		oneArg := func(dst *string) error {
			if !d.AllArgs(dst) {
				return secretref.ArgErr(d, "tailnet node "+opt, "takes one value")
			}
			return nil
		}
		var err error
		switch opt {
		case "auth_key":
			err = oneArg(&nc.AuthKey)
		case "control_url":
			err = oneArg(&nc.ControlURL)
		case "hostname":
			err = oneArg(&nc.Hostname)
		case "state_dir":
			err = oneArg(&nc.StateDir)
		case "ephemeral":
			if d.NextArg() {
				err = secretref.ArgErr(d, "tailnet node "+opt, "takes no value")
			}
			nc.Ephemeral = true
		case "tags":
			tags := d.RemainingArgs()
			nc.Tags = append(nc.Tags, tags...)
			if len(tags) == 0 {
				err = secretref.ArgErr(d, "tailnet node "+opt, "takes one or more tags")
			}
		default:
			err = d.Errf("tailnet node: unknown option %s (want auth_key, control_url, hostname, state_dir, ephemeral or tags)", secretref.Quote(d.Val()))
		}
		if err != nil {
			return tsnet.NodeConfig{}, err
		}
	}
	return nc, nil
}
