package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/tsnet"
)

// tailnetFlags are `clawguard sidecar`'s --tailnet flags: the node's
// settings (the same as Caddy's `tailnet { node … }`) and the peers served.
type tailnetFlags struct {
	node, authKey, controlURL, hostname string
	port                                uint
	ephemeral                           bool
	tags, allowUsers, allowTags         []string
}

const tailnetUsage = "[--tailnet NODE --tailnet-allow-tags TAG,... | --tailnet-allow-users LOGIN,... [--tailnet-port N] [--tailnet-auth-key {env.X}|{vault.X}|{file.X}] [--tailnet-control-url URL] [--tailnet-hostname NAME] [--tailnet-tags TAG,...] [--tailnet-ephemeral]]"

func addTailnetFlags(fs *flag.FlagSet) *tailnetFlags {
	f := &tailnetFlags{}
	fs.StringVar(&f.node, "tailnet", "", "also serve the API on the tailnet, as the node NODE (state in <state_dir>/tailnet/NODE); only to peers --tailnet-allow-* names, and only with identity_keys (the gate's signed identity) in the config")
	fs.UintVar(&f.port, "tailnet-port", sidecar.DefaultTailnetPort, "tailnet port to serve (plain HTTP inside the tailnet's WireGuard)")
	fs.StringVar(&f.authKey, "tailnet-auth-key", "", "the node's auth key as a placeholder: {env.NAME}, {vault.NAME} or {file./path}, never the key itself (default: log a login URL)")
	fs.StringVar(&f.controlURL, "tailnet-control-url", "", "coordination server, e.g. a Headscale URL (default Tailscale's)")
	fs.StringVar(&f.hostname, "tailnet-hostname", "", "the node's name in the tailnet (default NODE)")
	fs.BoolVar(&f.ephemeral, "tailnet-ephemeral", false, "register the node as ephemeral (removed soon after it goes offline)")
	listFlag(fs, &f.tags, "tailnet-tags", "ACL tags the node advertises, e.g. tag:clawguard-sidecar (comma-separated or repeated)")
	listFlag(fs, &f.allowUsers, "tailnet-allow-users", "tailnet logins whose nodes are served (comma-separated or repeated; * for all)")
	listFlag(fs, &f.allowTags, "tailnet-allow-tags", "tags whose nodes are served, e.g. the gate host's tag:clawguard-gate (comma-separated or repeated)")
	return f
}

// listFlag defines a flag that collects comma-separated values, repeatable.
func listFlag(fs *flag.FlagSet, dst *[]string, name, usage string) {
	fs.Func(name, usage, func(v string) error {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*dst = append(*dst, s)
			}
		}
		return nil
	})
}

// options checks the flags and returns the sidecar's tailnet options; nil
// without --tailnet. Mistakes are usage errors naming the flag.
func (f *tailnetFlags) options(fs *flag.FlagSet) (*sidecar.TailnetOptions, error) {
	if f.node == "" {
		var set []string
		fs.Visit(func(fl *flag.Flag) {
			if strings.HasPrefix(fl.Name, "tailnet-") {
				set = append(set, "--"+fl.Name)
			}
		})
		if len(set) > 0 {
			return nil, usageError{fmt.Sprintf("%s: only with --tailnet NODE", strings.Join(set, ", "))}
		}
		return nil, nil
	}
	if f.port == 0 || f.port > 65535 {
		return nil, usageError{fmt.Sprintf("--tailnet-port %d: want 1 to 65535", f.port)}
	}
	o := &sidecar.TailnetOptions{
		Node: f.node,
		Config: tsnet.NodeConfig{
			AuthKey:    f.authKey,
			ControlURL: f.controlURL,
			Hostname:   f.hostname,
			Ephemeral:  f.ephemeral,
			Tags:       f.tags,
		},
		Port:   uint16(f.port),
		Policy: tsnet.Policy{AllowUsers: f.allowUsers, AllowTags: f.allowTags},
	}
	if err := o.Config.Validate(f.node); err != nil {
		return nil, usageError{"--tailnet: " + err.Error()}
	}
	if err := o.Policy.Validate(); err != nil {
		return nil, usageError{"--tailnet-allow-users/--tailnet-allow-tags: " + err.Error()}
	}
	return o, nil
}
