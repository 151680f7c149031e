package authn

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"
)

// LocalPolicy decides local trust: a request from a process on this machine,
// not relayed by a proxy and not sent by a web page of another origin, is let
// in without credentials.
//
// Beyond docs/design.md's rule (loopback peer, no proxy headers, allowed Origin)
// it requires a loopback Host, because a DNS-rebinding page
// (evil.example resolving to 127.0.0.1) sends a loopback peer and a
// same-origin Origin, and it honours Sec-Fetch-Site for the cross-site
// requests that browsers send without an Origin.
type LocalPolicy struct {
	allowed map[string]struct{} // normalised origins
	relay   map[string]struct{} // further relay headers (canonical names)
}

// NewLocalPolicy normalises the allowed origins (scheme://host[:port]).
func NewLocalPolicy(origins []string) (*LocalPolicy, error) {
	p := &LocalPolicy{allowed: map[string]struct{}{}, relay: map[string]struct{}{}}
	for _, o := range origins {
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		p.allowed[n] = struct{}{}
	}
	return p, nil
}

// NormalizeOrigin returns origin as lowercase scheme://host[:port] without a
// default port, or an error if it is not an origin.
func NormalizeOrigin(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("bad origin %q: want scheme://host[:port]", origin)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}

// AddRelayHeaders makes names count as relay headers too: the headers of
// trusted_proxy rules, which only a proxy sends.
func (p *LocalPolicy) AddRelayHeaders(names ...string) {
	for _, n := range names {
		p.relay[textproto.CanonicalMIMEHeaderKey(n)] = struct{}{}
	}
}

// Relayed reports whether h carries a header by which proxies and CDNs pass
// on a client's address or their own passage (X-Forwarded-*, Forwarded,
// X-Real-IP, CF-Connecting-IP, True-Client-IP, X-Client-IP, Fly-Client-IP,
// X-Cluster-Client-IP, Via) or one of the policy's relay headers. A loopback
// peer that sends one is relaying somebody else's request, not a local one.
// Names are matched as net/http canonicalises them.
func (p *LocalPolicy) Relayed(h http.Header) bool {
	for name := range h {
		if len(name) >= 12 && strings.EqualFold(name[:12], "X-Forwarded-") {
			return true
		}
		switch name {
		case "Forwarded", "X-Real-Ip", "Cf-Connecting-Ip", "True-Client-Ip", "X-Client-Ip",
			"Fly-Client-Ip", "X-Cluster-Client-Ip", "Via":
			return true
		}
		if _, ok := p.relay[name]; ok {
			return true
		}
	}
	return false
}

// IsLocal reports whether r from peer qualifies for local trust, and if not,
// why (for logs; never sent to the client).
func (p *LocalPolicy) IsLocal(r *http.Request, peer netip.Addr) (bool, string) {
	if !peer.Unmap().IsLoopback() {
		return false, "peer is not loopback"
	}
	if p.Relayed(r.Header) {
		return false, "request carries proxy or client-IP headers"
	}
	if !p.hostAllowed(r.Host) {
		return false, "Host is not a loopback name"
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !p.originAllowed(origin, r) {
			return false, "foreign Origin"
		}
		return true, ""
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return false, "cross-site browser request"
	}
	return true, ""
}

// ForeignOrigin reports whether r is a browser request from an origin that
// is not allowed. The rate limiter counts such requests apart (ClassForeign)
// so a hostile page cannot lock the local user out.
func (p *LocalPolicy) ForeignOrigin(r *http.Request) bool {
	origin := first(r.Header, "Origin")
	return origin != "" && !p.originAllowed(origin, r)
}

func (p *LocalPolicy) originAllowed(origin string, r *http.Request) bool {
	n, err := NormalizeOrigin(origin)
	if err != nil {
		return false // "null" and other opaque origins
	}
	if _, ok := p.allowed[n]; ok {
		return true
	}
	// Same origin as the gate itself, reached by a loopback name.
	u, _ := url.Parse(n)
	return p.hostAllowed(r.Host) && sameHostPort(u, r)
}

func sameHostPort(origin *url.URL, r *http.Request) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	self, err := NormalizeOrigin(scheme + "://" + r.Host)
	if err != nil {
		return false
	}
	return self == origin.Scheme+"://"+origin.Host
}

// hostAllowed accepts loopback names and the hosts of allowed origins.
func (p *LocalPolicy) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().IsLoopback()
	}
	for o := range p.allowed {
		if u, err := url.Parse(o); err == nil && strings.EqualFold(u.Hostname(), host) {
			return true
		}
	}
	return false
}
