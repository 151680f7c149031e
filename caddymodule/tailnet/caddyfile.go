package tailnet

import (
	"encoding/json"
	"fmt"

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
//	}
//
// Several tailnet blocks merge; a node may be defined once.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := App{Nodes: map[string]tsnet.NodeConfig{}}
	if prev, ok := existing.(httpcaddyfile.App); ok {
		if err := json.Unmarshal(prev.Value, &app); err != nil {
			return nil, fmt.Errorf("tailnet: merging blocks: %w", err)
		}
		if app.Nodes == nil {
			app.Nodes = map[string]tsnet.NodeConfig{}
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
			default:
				return nil, d.Errf("tailnet: unknown option %s (want state_dir or node)", secretref.Quote(d.Val()))
			}
		}
	}
	return httpcaddyfile.App{Name: "tailnet", Value: caddyconfig.JSON(app, nil)}, nil
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
