package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// tsnetStateFile is where a tsnet node keeps its state (keys, prefs and
// serve config): a JSON object of base64 values, as tailscale.com's
// FileStore writes it.
const tsnetStateFile = "tailscaled.state"

// serveKeyPrefix starts the state keys holding a profile's serve config
// (ipn.ServeConfigKey).
const serveKeyPrefix = "_serve/"

// tailnetNodeDirs returns the state directories of the tailnet nodes: those
// the config names, and those found under <state_dir>/tailnet.
func (a *auditor) tailnetNodeDirs() map[string]string {
	dirs := map[string]string{}
	base := a.opts.StateDir
	if c, err := a.adapted(); err == nil {
		if c.tailnetDir != "" {
			base = c.tailnetDir
		}
		for name, n := range c.tailnetNodes {
			d := n.StateDir
			if d == "" {
				d = filepath.Join(base, "tailnet", name)
			}
			dirs[name] = d
		}
	}
	for _, b := range []string{base, a.opts.StateDir} {
		entries, err := os.ReadDir(filepath.Join(b, "tailnet"))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if _, named := dirs[e.Name()]; e.IsDir() && !named {
				dirs[e.Name()] = filepath.Join(b, "tailnet", e.Name())
			}
		}
	}
	return dirs
}

// funnelHosts returns the host:port values a node's saved serve configs
// expose through Tailscale Funnel, i.e. to the whole internet.
func funnelHosts(stateFile string) ([]string, error) {
	raw, err := readBounded(stateFile)
	if err != nil {
		return nil, err
	}
	var store map[string][]byte // base64 values, decoded by encoding/json
	if err := json.Unmarshal(raw, &store); err != nil {
		return nil, fmt.Errorf("%s: %w", stateFile, err)
	}
	var hosts []string
	for key, val := range store {
		if !strings.HasPrefix(key, serveKeyPrefix) {
			continue
		}
		var sc struct {
			AllowFunnel map[string]bool
		}
		if err := json.Unmarshal(val, &sc); err != nil {
			return nil, fmt.Errorf("%s: serve config %s: %w", stateFile, key, err)
		}
		for hp, on := range sc.AllowFunnel {
			if on {
				hosts = append(hosts, hp)
			}
		}
	}
	slices.Sort(hosts)
	return hosts, nil
}

func checkTailnetPublic(_ context.Context, a *auditor) ([]Finding, error) {
	var out []Finding
	ran := false
	if c, err := a.adapted(); err == nil {
		for _, s := range c.servers {
			var tail, public []string
			for _, l := range s.listen {
				switch l.kind {
				case addrTailnet:
					tail = append(tail, l.raw)
				case addrPublic:
					public = append(public, l.raw)
				}
			}
			if len(tail) > 0 {
				ran = true
			}
			if len(tail) > 0 && len(public) > 0 {
				out = append(out, Finding{Severity: SeverityCritical, Path: c.path,
					Finding: fmt.Sprintf("server %s serves its tailnet site (%s) on %s too, beyond the tailnet", s.name, strings.Join(tail, ", "), strings.Join(public, ", ")),
					Remedy:  "bind the site only to tailnet/<node> (and 127.0.0.1 for local tools)"})
			}
		}
	}
	dirs := a.tailnetNodeDirs()
	for _, name := range sortedKeys(dirs) {
		sf := filepath.Join(dirs[name], tsnetStateFile)
		hosts, err := funnelHosts(sf)
		if notExist(err) {
			continue
		}
		ran = true
		if err != nil {
			out = append(out, Finding{Severity: SeverityWarn, Path: sf,
				Finding: fmt.Sprintf("tailnet node %s: cannot read its state to look for Funnel: %v", name, err),
				Remedy:  "check the file; it should be readable by clawguard's user only"})
			continue
		}
		if len(hosts) > 0 {
			out = append(out, Finding{Severity: SeverityCritical, Path: sf,
				Finding: fmt.Sprintf("tailnet node %s has Tailscale Funnel on for %s: the internet can reach it, not just the tailnet", name, strings.Join(hosts, ", ")),
				Remedy:  "turn Funnel off for the node (tailscale funnel reset, or remove the node's serve config) and keep remote access on the tailnet"})
		}
	}
	if !ran {
		return nil, skip("no tailnet listeners or nodes")
	}
	return out, nil
}
