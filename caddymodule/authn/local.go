package authn

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// LocalPolicy decides local trust: a request from a process on this machine,
// not relayed by a proxy and not sent by a web page of another origin, is let
// in without credentials.
//
// Beyond DESIGN.md's rule (loopback peer, no proxy headers, allowed Origin)
// it requires a loopback Host, because a DNS-rebinding page
// (evil.example resolving to 127.0.0.1) sends a loopback peer and a
// same-origin Origin, and it honours Sec-Fetch-Site for the cross-site
// requests that browsers send without an Origin.
type LocalPolicy struct {
	allowed map[string]struct{} // normalised origins
}

// NewLocalPolicy normalises the allowed origins (scheme://host[:port]).
func NewLocalPolicy(origins []string) (*LocalPolicy, error) {
	p := &LocalPolicy{allowed: map[string]struct{}{}}
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

// HasProxyHeaders reports whether r carries headers that proxies add. A
// loopback peer that sends them is relaying someone else's request.
func HasProxyHeaders(h http.Header) bool {
	for name := range h {
		if len(name) >= 12 && strings.EqualFold(name[:12], "X-Forwarded-") {
			return true
		}
		if strings.EqualFold(name, "Forwarded") || strings.EqualFold(name, "X-Real-Ip") {
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
	if HasProxyHeaders(r.Header) {
		return false, "request carries proxy headers"
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

// ForeignOrigin returns the request's Origin when it is a browser request
// from an origin that is not allowed, else "". The rate limiter keys such
// requests apart so a hostile page cannot lock the local user out.
func (p *LocalPolicy) ForeignOrigin(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if origin == "" || p.originAllowed(origin, r) {
		return ""
	}
	return origin
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
