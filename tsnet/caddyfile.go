package tsnet

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
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
	app := App{Nodes: map[string]NodeConfig{}}
	if prev, ok := existing.(httpcaddyfile.App); ok {
		if err := json.Unmarshal(prev.Value, &app); err != nil {
			return nil, fmt.Errorf("tailnet: merging blocks: %w", err)
		}
		if app.Nodes == nil {
			app.Nodes = map[string]NodeConfig{}
		}
	}
	for d.Next() {
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		for d.NextBlock(0) {
			switch d.Val() {
			case "state_dir":
				if !d.NextArg() {
					return nil, d.ArgErr()
				}
				app.StateDir = d.Val()
				if d.NextArg() {
					return nil, d.ArgErr()
				}
			case "node":
				if !d.NextArg() {
					return nil, d.ArgErr()
				}
				name := d.Val()
				if d.NextArg() {
					return nil, d.ArgErr()
				}
				if _, dup := app.Nodes[name]; dup {
					return nil, d.Errf("tailnet: node %s defined twice", name)
				}
				nc, err := parseNode(d)
				if err != nil {
					return nil, err
				}
				if err := nc.Validate(name); err != nil {
					return nil, d.Errf("tailnet: %v", err)
				}
				app.Nodes[name] = nc
			default:
				return nil, d.Errf("tailnet: unknown option %s (want state_dir or node)", optionName(d.Val()))
			}
		}
	}
	return httpcaddyfile.App{Name: "tailnet", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseNode parses the block of `node <name> { … }`.
func parseNode(d *caddyfile.Dispenser) (NodeConfig, error) {
	var nc NodeConfig
	oneArg := func(dst *string) error {
		if !d.NextArg() {
			return d.ArgErr()
		}
		*dst = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		return nil
	}
	for d.NextBlock(1) {
		var err error
		switch d.Val() {
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
				err = d.ArgErr()
			}
			nc.Ephemeral = true
		case "tags":
			nc.Tags = append(nc.Tags, d.RemainingArgs()...)
			if len(nc.Tags) == 0 {
				err = d.ArgErr()
			}
		default:
			err = d.Errf("tailnet node: unknown option %s (want auth_key, control_url, hostname, state_dir, ephemeral or tags)", optionName(d.Val()))
		}
		if err != nil {
			return NodeConfig{}, err
		}
	}
	return nc, nil
}

// optionName quotes an unknown option for an error message unless it could
// be a secret (e.g. a key that slipped onto its own line), which errors
// must not echo.
func optionName(tok string) string {
	if optionRE.MatchString(tok) {
		return fmt.Sprintf("%q", tok)
	}
	return "(value not shown)"
}

var optionRE = regexp.MustCompile(`^[a-z_]{1,32}$`)
