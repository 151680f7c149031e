package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/internal/secretref"
	"github.com/clawguard/clawguard/vault"
)

// recommendedTokenLength is the shortest shared token the audit accepts
// silently; the gate itself refuses anything under authn.MinTokenLength.
const recommendedTokenLength = 24

// minBcryptCost is the lowest bcrypt cost the audit accepts silently
// (bcrypt.DefaultCost).
const minBcryptCost = bcrypt.DefaultCost

// resolveSecret returns the value of a secret option as the gate would
// resolve it (see secretref), {vault.NAME} from the vault in stateDir.
// Errors name the placeholder, never a value.
func (a *auditor) resolveSecret(raw, stateDir string) (string, error) {
	v, err := secretref.Resolve(raw, func(name string) ([]byte, error) {
		v, err := a.vaultIn(stateDir)
		if err != nil {
			return nil, err
		}
		return v.Get(name)
	})
	if err != nil {
		return "", err
	}
	return v, nil
}

// vaultIn returns the vault of stateDir: the run's vault for its own state
// directory, another one opened for a gate with a state_dir of its own.
func (a *auditor) vaultIn(stateDir string) (*vault.Vault, error) {
	if stateDir == "" || stateDir == a.opts.StateDir {
		return a.vault()
	}
	return vault.Open(stateDir)
}

// methods lists the credential methods a gate has.
func (g *gateConfig) methods() []string {
	var m []string
	if len(g.Tokens) > 0 {
		m = append(m, "token")
	}
	if len(g.Passwords) > 0 {
		m = append(m, "password")
	}
	if len(g.TrustedProxies) > 0 {
		m = append(m, "trusted_proxy")
	}
	if g.has("hmac") || g.has("hmac_keys") {
		m = append(m, "hmac")
	}
	if g.has("tailnet_identity") {
		m = append(m, "tailnet_identity")
	}
	if g.Pairing == nil || !g.Pairing.Off {
		m = append(m, "pairing")
	}
	return m
}

func checkAuthCompleteness(_ context.Context, a *auditor) ([]Finding, error) {
	c, err := a.adapted()
	if isSkip(err) {
		// What the Caddyfile's lines show still counts when it does not load.
		if raw, rerr := a.config(); rerr == nil && !raw.isJSON && raw.lines != nil {
			out := append(a.hmacFindings(raw), rateLimitFindings(raw)...)
			if len(out) > 0 {
				return out, nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if len(c.servers) == 0 {
		return nil, skip("the config has no HTTP servers")
	}
	var out []Finding
	add := func(sev Severity, line int, finding, remedy string) {
		out = append(out, Finding{Severity: sev, Path: c.path, Line: line, Finding: finding, Remedy: remedy})
	}
	for _, s := range c.servers {
		kind, addrs := s.exposure()
		where := strings.Join(addrs, ", ")
		if len(s.unguarded) > 0 {
			what := strings.Join(dedupe(s.unguarded), " and ")
			switch kind {
			case addrPublic:
				add(SeverityCritical, 0, fmt.Sprintf("server %s listens on %s and serves %s without the gate or any authentication", s.name, where, what),
					"put `clawguard { … }` at the top of the site block, or bind 127.0.0.1")
			case addrTailnet:
				add(SeverityWarn, 0, fmt.Sprintf("server %s serves %s on the tailnet (%s) without the gate: every tailnet device gets in", s.name, what, where),
					"put `clawguard { … }` (with tailnet_identity) at the top of the site block")
			case addrLoopback:
				add(SeverityWarn, 0, fmt.Sprintf("server %s serves %s on %s without the gate: any web page in this machine's browser can drive it (ClawJacked)", s.name, what, where),
					"put `clawguard { … }` at the top of the site block: local trust checks the Origin")
			}
		}
		for _, g := range s.gates {
			out = append(out, a.gateFindings(c, s, g, kind, where)...)
		}
	}
	out = append(out, a.hmacFindings(c)...)
	out = append(out, rateLimitFindings(c)...)
	return out, nil
}

// gateFindings judges one gate's configuration.
func (a *auditor) gateFindings(c *caddyConfig, s *server, g *gateConfig, kind addrKind, where string) []Finding {
	var out []Finding
	add := func(sev Severity, finding, remedy string) {
		out = append(out, Finding{Severity: sev, Path: c.path, Finding: fmt.Sprintf("server %s: %s", s.label(), finding), Remedy: remedy})
	}
	if len(g.methods()) == 0 {
		if g.localTrust() {
			add(SeverityWarn, "the gate has no credential method (no token, password, trusted_proxy, hmac, pairing or tailnet_identity): only this machine's own requests get in",
				"add `token {vault.gateway_token}` (clawguard vault set gateway_token) or turn pairing on")
		} else {
			add(SeverityWarn, "the gate has no credential method and local_trust is off: it lets nobody in",
				"add `token {vault.gateway_token}` or another method")
		}
	}
	for i, raw := range g.Tokens {
		val, err := a.resolveSecret(raw, g.StateDir)
		label := fmt.Sprintf("token %d", i+1)
		if !secretref.IsLiteral(raw) {
			label += " (" + raw + ")"
		}
		switch {
		case err != nil && strings.Contains(raw, "{env."):
			// The gate's environment may differ from the audit's.
			add(SeverityInfo, fmt.Sprintf("%s is not set in this environment, so its length cannot be checked (the gate will not start without it)", label),
				"run the audit with the gate's environment, or keep the token in the vault: {vault.NAME}")
		case err != nil:
			add(SeverityWarn, fmt.Sprintf("%s does not resolve: %v; the gate will not start", label, err),
				"create the entry (clawguard vault set NAME)")
		case len(val) < authn.MinTokenLength:
			add(SeverityCritical, fmt.Sprintf("%s is %d characters: guessable, and the gate refuses tokens under %d", label, len(val), authn.MinTokenLength),
				"use a long random token: openssl rand -base64 32 | clawguard vault set gateway_token")
		case len(val) < recommendedTokenLength:
			add(SeverityWarn, fmt.Sprintf("%s is only %d characters (%d or more recommended)", label, len(val), recommendedTokenLength),
				"use a long random token: openssl rand -base64 32 | clawguard vault set gateway_token")
		}
	}
	for _, p := range g.Passwords {
		hash, err := authn.ParseBcryptHash(p.Hash)
		if err != nil {
			continue
		}
		if cost, err := bcrypt.Cost(hash); err == nil && cost < minBcryptCost {
			add(SeverityWarn, fmt.Sprintf("the bcrypt hash of user %s has cost %d: cheap to crack if it leaks", p.User, cost),
				fmt.Sprintf("rehash with cost %d or more: htpasswd -nBC 12 %s", minBcryptCost, p.User))
		}
	}
	for i, tp := range g.TrustedProxies {
		label := fmt.Sprintf("trusted_proxy %d", i+1)
		if len(tp.CIDRs) == 0 {
			add(SeverityCritical, label+" has no CIDRs", "list the proxy's addresses: trusted_proxy 10.0.0.5 { … }")
		}
		if tp.UserHeader == "" {
			add(SeverityCritical, label+" has no user_header", "set user_header to the header the proxy puts the user in")
		}
		for _, cidr := range tp.CIDRs {
			if pfx, err := authn.ParsePrefix(cidr); err == nil && pfx.Bits() < 8 {
				add(SeverityCritical, fmt.Sprintf("%s trusts %s: any client can claim to be any user", label, cidr),
					"list only the proxy's own addresses")
			}
		}
		if tp.AllowLoopback {
			add(SeverityWarn, label+" has allow_loopback: any process on this machine can assert any user",
				"remove allow_loopback unless the proxy runs on this machine and nothing else can connect")
		}
	}
	if g.localTrust() && (kind == addrPublic || kind == addrTailnet) {
		add(SeverityWarn, fmt.Sprintf("local trust is on while the gate listens on %s: a tunnel or proxy on this machine that adds no forwarding headers (ssh -L, socat, a TCP tunnel) turns remote clients into local ones", where),
			"set `local_trust off`, or keep the gate on 127.0.0.1 and expose it through the tailnet")
	}
	return out
}

// hmacFindings flags HMAC keys shorter than httpsig.MinKeyBytes, read from
// the Caddyfile's `hmac <keyid> <secret>` lines (which say which value is
// the key whatever the JSON looks like), or from the JSON of a JSON config.
func (a *auditor) hmacFindings(c *caddyConfig) []Finding {
	type key struct {
		id, secret string
		line       int
	}
	var keys []key
	if c.isJSON {
		for _, g := range c.gates() {
			for _, k := range hmacKeysJSON(g.raw["hmac"]) {
				keys = append(keys, key{id: k[0], secret: k[1]})
			}
		}
	} else {
		for _, l := range c.lines {
			if l.parent() == "clawguard" && l.name() == "hmac" && len(l.args()) >= 2 {
				keys = append(keys, key{id: l.args()[0].Text, secret: l.args()[1].Text, line: l.line()})
			}
		}
	}
	var out []Finding
	for _, k := range keys {
		val, err := a.resolveSecret(k.secret, "")
		if err != nil {
			out = append(out, Finding{Severity: SeverityWarn, Path: c.path, Line: k.line,
				Finding: fmt.Sprintf("HMAC key %s does not resolve: %v", k.id, err),
				Remedy:  "create the entry (clawguard vault set NAME) or set the variable"})
			continue
		}
		if _, err := httpsig.ParseKey([]byte(val)); err != nil {
			out = append(out, Finding{Severity: SeverityCritical, Path: c.path, Line: k.line,
				Finding: fmt.Sprintf("HMAC key %s: %v", k.id, err),
				Remedy:  "use a random key of at least 32 bytes: openssl rand -base64 48 | clawguard vault set hmac_" + vaultName(k.id)})
		}
	}
	return out
}

// hmacKeysJSON extracts (keyid, secret) pairs from a gate's hmac option:
// the gate's own {"keys": [{"key_id", "secret"}, …]}, a list of such
// objects, or an object keyed by key ID.
func hmacKeysJSON(raw json.RawMessage) [][2]string {
	var wrapped struct {
		Keys json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(raw, &wrapped) == nil && len(wrapped.Keys) > 0 && wrapped.Keys[0] == '[' {
		raw = wrapped.Keys
	}
	var out [][2]string
	pick := func(m map[string]any, names ...string) string {
		for _, n := range names {
			if s, ok := m[n].(string); ok {
				return s
			}
		}
		return ""
	}
	var list []map[string]any
	if json.Unmarshal(raw, &list) == nil {
		for _, m := range list {
			out = append(out, [2]string{pick(m, "key_id", "keyid", "id"), pick(m, "secret", "key")})
		}
		return out
	}
	var byID map[string]any
	if json.Unmarshal(raw, &byID) == nil {
		for _, id := range sortedKeys(byID) {
			switch v := byID[id].(type) {
			case string:
				out = append(out, [2]string{id, v})
			case map[string]any:
				out = append(out, [2]string{id, pick(v, "secret", "key")})
			}
		}
	}
	return out
}

// rateLimitFindings flags gates with rate limiting off. In a Caddyfile the
// `rate_limit off` line is removed by --fix, which restores the default
// (10 failures a minute, then a 5 minute lockout).
func rateLimitFindings(c *caddyConfig) []Finding {
	const finding = "rate limiting is off: a client can guess credentials as fast as the gate answers (OpenClaw #14137: 645 guesses/s)"
	var out []Finding
	if c.isJSON {
		for _, g := range c.gates() {
			if g.RateLimit != nil && g.RateLimit.Off {
				out = append(out, Finding{Severity: SeverityWarn, Path: c.path, Finding: "server " + g.server + ": " + finding,
					Remedy: `remove "rate_limit": {"off": true} from the clawguard handler`})
			}
		}
		return out
	}
	for _, l := range c.lines {
		if l.parent() != "clawguard" || l.name() != "rate_limit" || len(l.args()) != 1 || l.args()[0].Text != "off" {
			continue
		}
		out = append(out, Finding{Severity: SeverityWarn, Path: c.path, Line: l.line(), Finding: finding,
			Remedy: "clawguard audit --fix removes `rate_limit off` (the default limits apply)",
			fix:    &rateLimitAction{file: c.path, line: l.line()}})
	}
	return out
}

func dedupe(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
