package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
)

// maxConfigBytes bounds every config file the audit reads.
const maxConfigBytes = 4 << 20

// caddyConfig is the audited Caddy config: the file as written (for line
// numbers and rewrites) and the JSON Caddy's own adapter makes of it (for
// what Caddy will actually do).
type caddyConfig struct {
	path   string // absolute
	raw    []byte
	isJSON bool // the file is Caddy JSON, not a Caddyfile

	adapted  []byte // Caddy JSON; nil when adaptErr is set
	adaptErr error

	lines []cfLine // Caddyfile structure; nil for JSON configs

	adminListen  string // the effective admin address; "" when disabled
	servers      []*server
	tailnetDir   string                // tailnet app state_dir
	tailnetNodes map[string]tailnetCfg // by node name
	appStateDir  string                // clawguard app state_dir: the gates' default
}

// server is one HTTP server of the config.
type server struct {
	name   string
	listen []listenAddr
	gates  []*gateConfig
	// unguarded names the handlers that serve something (reverse_proxy,
	// file_server) on a path no gate or authentication handler precedes.
	unguarded []string
	// upstreams are the dial addresses of reverse_proxy handlers behind a
	// gate: the gateway, whose port must not be reachable around the gate.
	upstreams []string
}

// gateConfig is one http.handlers.clawguard handler, decoded tolerantly:
// options added to the gate later are kept in raw.
type gateConfig struct {
	server string
	raw    map[string]json.RawMessage

	Tokens         []string       `json:"tokens"`
	Passwords      []gatePassword `json:"passwords"`
	TrustedProxies []gateProxy    `json:"trusted_proxies"`
	LocalTrust     *bool          `json:"local_trust"`
	RateLimit      *struct {
		Off bool `json:"off"`
	} `json:"rate_limit"`
	StateDir string `json:"state_dir"`
	Pairing  *struct {
		Off bool `json:"off"`
	} `json:"pairing"`
	Admins []string `json:"admins"`
}

type gatePassword struct {
	User string `json:"user"`
	Hash string `json:"hash"`
}

type gateProxy struct {
	CIDRs         []string `json:"cidrs"`
	UserHeader    string   `json:"user_header"`
	AllowLoopback bool     `json:"allow_loopback"`
}

// localTrust is the gate's effective local_trust (default on).
func (g *gateConfig) localTrust() bool { return g.LocalTrust == nil || *g.LocalTrust }

// has reports whether the handler JSON sets option key (used for options
// the audit only needs to see the presence of, such as hmac).
func (g *gateConfig) has(key string) bool {
	v, ok := g.raw[key]
	return ok && string(v) != "null" && string(v) != "[]" && string(v) != "{}"
}

// tailnetCfg is the part of a tailnet node's settings the audit reads.
type tailnetCfg struct {
	AuthKey  string `json:"auth_key"`
	StateDir string `json:"state_dir"`
}

// addrKind classifies where a listener can be reached from.
type addrKind int

const (
	addrLoopback addrKind = iota // this machine only
	addrUnix                     // a unix socket or file descriptor
	addrTailnet                  // the tailnet only
	addrPublic                   // any other network: a LAN, the internet
)

// listenAddr is a parsed listen address.
type listenAddr struct {
	raw  string
	kind addrKind
	port uint
}

// Tailscale's address ranges: its CGNAT IPv4 range and its IPv6 ULA prefix.
var tailnetPrefixes = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fd7a:115c:a1e0::/48"),
}

// classifyIP says where an address bound on this machine can be reached
// from. The unspecified address means every interface, so public.
func classifyIP(ip netip.Addr) addrKind {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return addrLoopback
	case ip.IsUnspecified():
		return addrPublic
	}
	for _, p := range tailnetPrefixes {
		if p.Contains(ip) {
			return addrTailnet
		}
	}
	return addrPublic
}

// parseListen classifies a Caddy listen address ("127.0.0.1:80", ":443",
// "tailnet/node:443", "unix//run/x.sock").
func parseListen(raw string) (listenAddr, error) {
	na, err := caddy.ParseNetworkAddress(raw)
	if err != nil {
		return listenAddr{}, err
	}
	la := listenAddr{raw: raw, port: na.StartPort}
	switch {
	case na.IsUnixNetwork() || na.IsFdNetwork():
		la.kind = addrUnix
	case na.Network == "tailnet":
		la.kind = addrTailnet
	case na.Host == "":
		la.kind = addrPublic
	case strings.EqualFold(na.Host, "localhost"):
		la.kind = addrLoopback
	default:
		if ip, err := netip.ParseAddr(strings.Trim(na.Host, "[]")); err == nil {
			la.kind = classifyIP(ip)
		} else {
			la.kind = addrPublic // a host name: whatever it resolves to
		}
	}
	return la, nil
}

// loadCaddyConfig reads and adapts the config at path. A config that does
// not adapt is returned with adaptErr set: the file-level checks (secrets,
// permissions) still run on it.
func loadCaddyConfig(path string) (*caddyConfig, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	raw, err := readBounded(abs)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c := &caddyConfig{path: abs, raw: raw, isJSON: strings.EqualFold(filepath.Ext(abs), ".json")}
	if c.isJSON {
		c.adapted = raw
	} else {
		tokens, err := caddyfile.Tokenize(raw, abs)
		if err != nil {
			c.adaptErr = fmt.Errorf("%s: %w", abs, err)
			return c, nil
		}
		c.lines = splitLines(tokens)
		c.adapted, c.adaptErr = adaptCaddyfile(raw, abs)
	}
	if c.adaptErr == nil {
		if err := c.decode(); err != nil {
			c.adaptErr = fmt.Errorf("%s: %w", abs, err)
		}
	}
	return c, nil
}

// adaptCaddyfile runs Caddy's own Caddyfile adapter on body, as
// `caddy adapt` would. Directives of plugins must be registered in this
// process: the clawguard binary registers Caddy's standard modules and
// clawguard's.
func adaptCaddyfile(body []byte, path string) ([]byte, error) {
	ad := caddyconfig.GetAdapter("caddyfile")
	if ad == nil {
		return nil, errors.New("the caddyfile adapter is not registered in this program")
	}
	out, _, err := ad.Adapt(body, map[string]any{"filename": path})
	if err != nil {
		return nil, fmt.Errorf("adapting %s: %w", path, err)
	}
	return out, nil
}

// readBounded reads a regular file of at most maxConfigBytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxConfigBytes)
	}
	return b, nil
}

// caddyJSON is the part of Caddy's JSON config the audit reads.
type caddyJSON struct {
	Admin *struct {
		Disabled bool   `json:"disabled"`
		Listen   string `json:"listen"`
	} `json:"admin"`
	Apps struct {
		HTTP *struct {
			Servers map[string]struct {
				Listen []string `json:"listen"`
				Routes []route  `json:"routes"`
			} `json:"servers"`
		} `json:"http"`
		Tailnet *struct {
			StateDir string                `json:"state_dir"`
			Nodes    map[string]tailnetCfg `json:"nodes"`
		} `json:"tailnet"`
		Clawguard *struct {
			StateDir string `json:"state_dir"`
		} `json:"clawguard"`
	} `json:"apps"`
}

type route struct {
	Match  json.RawMessage   `json:"match"`
	Handle []json.RawMessage `json:"handle"`
}

type handlerHead struct {
	Handler   string  `json:"handler"`
	Routes    []route `json:"routes"`
	Upstreams []struct {
		Dial string `json:"dial"`
	} `json:"upstreams"`
}

// decode fills the structured view from the adapted JSON.
func (c *caddyConfig) decode() error {
	var cj caddyJSON
	if err := json.Unmarshal(c.adapted, &cj); err != nil {
		return fmt.Errorf("decoding the Caddy JSON: %w", err)
	}
	c.adminListen = caddy.DefaultAdminListen
	if cj.Admin != nil {
		if cj.Admin.Disabled {
			c.adminListen = ""
		} else if cj.Admin.Listen != "" {
			c.adminListen = cj.Admin.Listen
		}
	}
	if t := cj.Apps.Tailnet; t != nil {
		c.tailnetDir = t.StateDir
		c.tailnetNodes = t.Nodes
	}
	if cg := cj.Apps.Clawguard; cg != nil {
		c.appStateDir = cg.StateDir
	}
	if cj.Apps.HTTP == nil {
		return nil
	}
	for _, name := range sortedKeys(cj.Apps.HTTP.Servers) {
		sj := cj.Apps.HTTP.Servers[name]
		s := &server{name: name}
		listen := sj.Listen
		if len(listen) == 0 {
			listen = []string{":443"} // Caddy's default for a server without listen
		}
		for _, l := range listen {
			la, err := parseListen(l)
			if err != nil {
				return fmt.Errorf("server %s: listen %q: %w", name, l, err)
			}
			s.listen = append(s.listen, la)
		}
		if _, err := s.walk(sj.Routes, false); err != nil {
			return fmt.Errorf("server %s: %w", name, err)
		}
		c.servers = append(c.servers, s)
	}
	return nil
}

// walk visits routes in order and reports whether a gate without a matcher
// guarded the rest of the chain. A gate (or Caddy's own authentication
// handler) guards every later handler of its route; without a matcher it
// also guards every later route, since it wraps the rest of the chain.
func (s *server) walk(routes []route, guarded bool) (bool, error) {
	for _, rt := range routes {
		g := guarded
		matcherless := len(rt.Match) == 0 || string(rt.Match) == "null"
		for _, hraw := range rt.Handle {
			var h handlerHead
			if err := json.Unmarshal(hraw, &h); err != nil {
				return false, fmt.Errorf("handler: %w", err)
			}
			switch h.Handler {
			case "clawguard":
				gc := &gateConfig{server: s.name}
				if err := json.Unmarshal(hraw, &gc.raw); err != nil {
					return false, fmt.Errorf("clawguard handler: %w", err)
				}
				if err := json.Unmarshal(hraw, gc); err != nil {
					return false, fmt.Errorf("clawguard handler: %w", err)
				}
				s.gates = append(s.gates, gc)
				g = true
			case "authentication":
				g = true
			case "subroute":
				sub, err := s.walk(h.Routes, g)
				if err != nil {
					return false, err
				}
				g = g || sub
			case "reverse_proxy", "file_server":
				if !g {
					s.unguarded = append(s.unguarded, h.Handler)
				} else if h.Handler == "reverse_proxy" {
					for _, u := range h.Upstreams {
						s.upstreams = append(s.upstreams, u.Dial)
					}
				}
			}
		}
		if g && matcherless {
			guarded = true
		}
	}
	return guarded, nil
}

// exposure summarises where a server can be reached from: the most exposed
// kind among its listeners, and the addresses of that kind.
func (s *server) exposure() (addrKind, []string) {
	kind := addrUnix
	rank := map[addrKind]int{addrUnix: 0, addrLoopback: 1, addrTailnet: 2, addrPublic: 3}
	var addrs []string
	for _, l := range s.listen {
		switch {
		case rank[l.kind] > rank[kind]:
			kind, addrs = l.kind, []string{l.raw}
		case l.kind == kind:
			addrs = append(addrs, l.raw)
		}
	}
	return kind, addrs
}

// label names the server for messages: Caddy's name and its addresses.
func (s *server) label() string {
	addrs := make([]string, len(s.listen))
	for i, l := range s.listen {
		addrs[i] = l.raw
	}
	return s.name + " (" + strings.Join(addrs, ", ") + ")"
}

// gates returns every gate of the config.
func (c *caddyConfig) gates() []*gateConfig {
	var out []*gateConfig
	for _, s := range c.servers {
		out = append(out, s.gates...)
	}
	return out
}
