package authn

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/clawguard/clawguard/wire"
)

// TrustedProxy lets a reverse proxy in front of the gate (nginx, Cloudflare
// Access, an SSO proxy) assert the user in a header. The assertion counts only
// when the TCP peer is one of the proxy's addresses; from anyone else the
// header is ignored and stripped.
type TrustedProxy struct {
	Prefixes       []netip.Prefix
	UserHeader     string
	RequireHeaders []string
	// AllowUsers limits which asserted users are let in; empty allows all.
	AllowUsers []string
	// AllowLoopback lets loopback peers act as the proxy. Off by default:
	// with it, every local process can assert any user.
	AllowLoopback bool
}

// Validate checks the rule for the mistakes that open the gate to everyone.
func (p *TrustedProxy) Validate() error {
	if len(p.Prefixes) == 0 {
		return errors.New("trusted_proxy needs at least one CIDR")
	}
	if p.UserHeader == "" {
		return errors.New("trusted_proxy needs user_header")
	}
	if strings.HasPrefix(http.CanonicalHeaderKey(p.UserHeader), wire.HeaderPrefix) {
		return fmt.Errorf("user_header %s: X-Clawguard-* headers are reserved for the gate", p.UserHeader)
	}
	for _, pfx := range p.Prefixes {
		if pfx.Bits() == 0 {
			return fmt.Errorf("trusted_proxy %s trusts every address; name the proxy's addresses", pfx)
		}
		if !p.AllowLoopback && (pfx.Contains(netip.MustParseAddr("127.0.0.1")) || pfx.Contains(netip.IPv6Loopback())) {
			return fmt.Errorf("trusted_proxy %s includes loopback: add allow_loopback if the proxy runs on this host (every local process can then assert users)", pfx)
		}
	}
	return nil
}

// ParsePrefix parses a CIDR or a bare IP (as a single-address prefix).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad CIDR or IP %q: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Trusts reports whether peer is one of the proxy's addresses.
func (p *TrustedProxy) Trusts(peer netip.Addr) bool {
	peer = peer.Unmap()
	if peer.IsLoopback() && !p.AllowLoopback {
		return false
	}
	for _, pfx := range p.Prefixes {
		if pfx.Contains(peer) {
			return true
		}
	}
	return false
}

// ProxyOutcome is the result of checking a trusted proxy's assertion.
type ProxyOutcome int

// Outcomes of TrustedProxy.Assert.
const (
	ProxyNoAssertion ProxyOutcome = iota // no user header: try other methods
	ProxyAccepted
	ProxyIncomplete // user asserted but a required header is blank
	ProxyForbidden  // user asserted but not in allow_users
)

// Assert reads the user a trusted proxy asserted in h.
func (p *TrustedProxy) Assert(h http.Header) (user string, outcome ProxyOutcome) {
	user = strings.TrimSpace(h.Get(p.UserHeader))
	if user == "" {
		return "", ProxyNoAssertion
	}
	for _, rh := range p.RequireHeaders {
		if strings.TrimSpace(h.Get(rh)) == "" {
			return user, ProxyIncomplete
		}
	}
	if len(p.AllowUsers) > 0 {
		for _, u := range p.AllowUsers {
			if u == user {
				return user, ProxyAccepted
			}
		}
		return user, ProxyForbidden
	}
	return user, ProxyAccepted
}
