package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/clawguard/clawguard/authn"
)

// checkPasswordLength notes, for every gate with password entries, that
// bcrypt checks only the first authn.MaxPasswordBytes bytes and the gate
// refuses longer presented passwords: a user whose password is longer
// cannot log in. The hash does not tell how long the password was, so this
// is for the record.
func checkPasswordLength(_ context.Context, a *auditor) ([]Finding, error) {
	c, err := a.adapted()
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, s := range c.servers {
		for _, g := range s.gates {
			if len(g.Passwords) == 0 {
				continue
			}
			users := make([]string, len(g.Passwords))
			for i, p := range g.Passwords {
				users[i] = p.User
			}
			out = append(out, Finding{Severity: SeverityInfo, Path: c.path,
				Finding: fmt.Sprintf("server %s: users %s log in with passwords; bcrypt checks only the first %d bytes of a password, so the gate refuses a presented password longer than %d bytes with 401 password_too_long",
					s.label(), strings.Join(users, ", "), authn.MaxPasswordBytes, authn.MaxPasswordBytes),
				Remedy: fmt.Sprintf("each user must pick a password of at most %d bytes: a longer one is refused even when the hash was made from it (a tool that accepts one hashes only its first %d bytes)", authn.MaxPasswordBytes, authn.MaxPasswordBytes)})
		}
	}
	if len(out) == 0 {
		return nil, skip("no gate has password entries")
	}
	return out, nil
}

// checkHMACReplayScope warns when gates accept the same HMAC key (keyid
// and secret) but keep their replay caches in different state directories.
// A replay cache is one state directory's, in one Caddy process's memory
// (caddymodule's pooledNonces), so each such gate accepts a given signature
// once: a captured request can be replayed once to every other gate.
func checkHMACReplayScope(_ context.Context, a *auditor) ([]Finding, error) {
	c, err := a.adapted()
	if err != nil {
		return nil, err
	}
	type use struct {
		gate *gateConfig
		dir  string
	}
	byKey := map[[2]string][]use{} // (keyid, secret value) -> the gates accepting it
	var order [][2]string
	hmacGates := 0
	for _, g := range c.gates() {
		keys := hmacKeysJSON(g.raw["hmac"])
		if len(keys) > 0 {
			hmacGates++
		}
		dir := a.gateStateDir(c, g)
		for _, k := range keys {
			val, err := a.resolveSecret(k[1], dir)
			if err != nil {
				continue // auth.completeness reports keys that do not resolve
			}
			id := [2]string{k[0], val}
			if _, seen := byKey[id]; !seen {
				order = append(order, id)
			}
			byKey[id] = append(byKey[id], use{gate: g, dir: dir})
		}
	}
	if hmacGates < 2 {
		return nil, skip("fewer than two gates accept HMAC signatures")
	}
	var out []Finding
	for _, id := range order {
		uses := byKey[id]
		var dirs, where []string
		for _, u := range uses {
			if !slices.Contains(dirs, u.dir) {
				dirs = append(dirs, u.dir)
			}
			where = append(where, fmt.Sprintf("server %s with state dir %s", u.gate.server, u.dir))
		}
		if len(dirs) < 2 {
			continue
		}
		out = append(out, Finding{Severity: SeverityWarn, Path: c.path,
			Finding: fmt.Sprintf("HMAC key %s is accepted by gates with different state dirs (%s): each keeps its own replay cache, so each accepts a signed request once and a captured request can be replayed to the others",
				id[0], strings.Join(where, "; ")),
			Remedy: "give the gates that accept a key the same state_dir, or each gate its own key (gates in other Caddy processes never share a replay cache: give them their own keys too)"})
	}
	return out, nil
}

// gateStateDir is the state directory g keeps its replay cache and vault
// in, as the gate resolves it: its state_dir, else the clawguard app's,
// else the default, which the audited state directory stands for. It is
// absolute and clean, so two spellings of one directory compare equal.
func (a *auditor) gateStateDir(c *caddyConfig, g *gateConfig) string {
	dir := g.StateDir
	if dir == "" {
		dir = c.appStateDir
	}
	if dir == "" {
		dir = a.opts.StateDir
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}
