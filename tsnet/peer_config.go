package tsnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"tailscale.com/net/tsaddr"

	"github.com/clawguard/clawguard/internal/secretref"
)

// Defaults of a PeerSpec.
const (
	DefaultPeerInterval = 10 * time.Second
	DefaultPeerTimeout  = 3 * time.Second
	DefaultPeerPath     = "/healthz"
)

// MinPeerInterval is the shortest probe interval: a typo such as 1ms must
// not turn the watch into a flood against the node host.
const MinPeerInterval = time.Second

// PeerSpec is one node host the gate watches: every Interval it sends
// GET http://<Address><Path> through its tailnet node Via and counts the
// peer up on a 200 within Timeout.
type PeerSpec struct {
	Name     string        // bounded like node names; labels metrics
	Address  string        // host:port, a MagicDNS name or tailnet IP
	Via      string        // the node to dial through; "" only before the caller fills in its default
	Interval time.Duration // between probes
	Timeout  time.Duration // of one probe, shorter than Interval
	Path     string        // the health path
}

// WithDefaults fills in the zero Interval, Timeout and Path.
func (p PeerSpec) WithDefaults() PeerSpec {
	if p.Interval == 0 {
		p.Interval = DefaultPeerInterval
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultPeerTimeout
	}
	if p.Path == "" {
		p.Path = DefaultPeerPath
	}
	return p
}

// Validate checks a spec with its defaults filled in. Errors name the
// peer and the option.
func (p PeerSpec) Validate() error {
	if err := ValidPeerName(p.Name); err != nil {
		return err
	}
	if err := ValidPeerAddress(p.Address); err != nil {
		return fmt.Errorf("peer %s: address: %w", p.Name, err)
	}
	if p.Via != "" {
		if err := ValidNodeName(p.Via); err != nil {
			return fmt.Errorf("peer %s: via: %w", p.Name, err)
		}
	}
	if p.Interval < MinPeerInterval {
		return fmt.Errorf("peer %s: interval %v: want at least %v", p.Name, p.Interval, MinPeerInterval)
	}
	if p.Timeout <= 0 || p.Timeout >= p.Interval {
		return fmt.Errorf("peer %s: timeout %v: want more than 0 and less than the interval (%v), so probes never overlap", p.Name, p.Timeout, p.Interval)
	}
	if err := validPeerPath(p.Path); err != nil {
		return fmt.Errorf("peer %s: path: %w", p.Name, err)
	}
	return nil
}

// ValidPeerName reports why name cannot name a watched peer, or nil.
// Peer names label metrics, so they are bounded like node names.
func ValidPeerName(name string) error {
	if !nodeNameRE.MatchString(name) {
		return fmt.Errorf("invalid peer name %s: use 1-63 lowercase letters, digits and inner hyphens", secretref.Quote(name))
	}
	return nil
}

// dnsLabelRE is one label of a MagicDNS name.
var dnsLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// ValidPeerAddress reports why addr is not the tailnet address of a node
// host: host:port with a MagicDNS name (short or full) or a tailnet IP
// (100.64.0.0/10, fd7a:115c:a1e0::/48), and no scheme or path. Only a
// host that parses as an IP is repeated: anything else could be a secret
// written in the wrong place.
func ValidPeerAddress(addr string) error {
	if strings.Contains(addr, "://") {
		return errors.New("want host:port without a scheme")
	}
	if strings.ContainsAny(addr, "/?#@ \t") {
		return errors.New("want host:port without a path, query or user")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return errors.New("want host:port with a port of 1-65535")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" || !tsaddr.IsTailscaleIP(ip) {
			return fmt.Errorf("%s is not a tailnet address (100.64.0.0/10 or fd7a:115c:a1e0::/48)", ip.WithZone(""))
		}
		return nil
	}
	return validMagicDNSName(host)
}

// validMagicDNSName checks host as a DNS name that the tailnet's MagicDNS
// can resolve.
func validMagicDNSName(host string) error {
	const want = "want a MagicDNS name (labels of letters, digits and inner hyphens) or a tailnet IP as host"
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return errors.New(want)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !dnsLabelRE.MatchString(l) {
			return errors.New(want)
		}
	}
	last := strings.ToLower(labels[len(labels)-1])
	if _, err := strconv.Atoi(last); err == nil {
		return errors.New("the host is neither a tailnet IP nor a MagicDNS name")
	}
	if last == "localhost" {
		return errors.New("localhost is this machine, not a tailnet node")
	}
	return nil
}

// peerPathRE is a plain absolute path. No query: credentials never go in
// URLs, and a health endpoint needs none.
var peerPathRE = regexp.MustCompile(`^/[A-Za-z0-9._~/-]*$`)

// validPeerPath checks the health path. It is not repeated (see
// ValidPeerAddress).
func validPeerPath(p string) error {
	if len(p) > 1024 || !peerPathRE.MatchString(p) || strings.HasPrefix(p, "//") {
		return errors.New("want an absolute path of letters, digits and ._~-/ such as /healthz, at most 1024 bytes, no query")
	}
	return nil
}
