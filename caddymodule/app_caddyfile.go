package caddymodule

import (
	"encoding/json"
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/clawguard/clawguard/internal/secretref"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("clawguard", parseGlobalOption)
}

// parseGlobalOption parses the `clawguard` global option into the app:
//
//	clawguard {
//	    state_dir <path>
//	    admin_listen <address>... | off
//	}
//
// They are the defaults of the handlers that do not set their own. Several
// blocks merge; the later value of an option wins.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	var app App
	if prev, ok := existing.(httpcaddyfile.App); ok {
		if err := json.Unmarshal(prev.Value, &app); err != nil {
			return nil, fmt.Errorf("clawguard: merging blocks: %w", err)
		}
	}
	for d.Next() {
		if d.NextArg() {
			return nil, secretref.ArgErr(d, "clawguard", "takes a block, no arguments")
		}
		for d.NextBlock(0) {
			switch d.Val() {
			case "state_dir":
				if !d.AllArgs(&app.StateDir) {
					return nil, secretref.ArgErr(d, "clawguard state_dir", "takes one path")
				}
			case "admin_listen":
				addrs, err := parseAdminListenArgs(d)
				if err != nil {
					return nil, err
				}
				app.AdminListen = addrs
			default:
				return nil, d.Errf("unknown clawguard global option %s (want state_dir or admin_listen)", secretref.Quote(d.Val()))
			}
		}
	}
	return httpcaddyfile.App{Name: "clawguard", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseAdminListenArgs reads `admin_listen <address>... | off`.
func parseAdminListenArgs(d *caddyfile.Dispenser) ([]string, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, secretref.ArgErr(d, "admin_listen", "takes addresses (127.0.0.1:18788, tailnet/<node>:<port>) or off")
	}
	if len(args) == 1 && args[0] == "off" {
		return args, nil
	}
	for _, a := range args {
		if _, err := parseAdminListen(a); err != nil {
			return nil, d.Err(err.Error())
		}
	}
	return args, nil
}
