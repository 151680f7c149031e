package tsnet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// Peer is who is at the other end of a tailnet connection, as the node's
// coordination server knows it.
type Peer struct {
	// LoginName is the user's login, e.g. "alice@example.com". It is empty
	// for a tagged node: a tagged node belongs to its tags, not to the user
	// who created it (Tailscale's own rule), so it never passes as a user.
	LoginName string `json:"login_name,omitempty"`

	// Tags are the node's ACL tags ("tag:ci"), sorted; empty for user nodes.
	Tags []string `json:"tags,omitempty"`

	// NodeName is the peer's MagicDNS name without the trailing dot,
	// e.g. "laptop.tail1234.ts.net".
	NodeName string `json:"node_name"`

	// NodeID is the peer's stable node ID.
	NodeID string `json:"node_id"`

	// Addr is the peer's tailnet address and port.
	Addr netip.AddrPort `json:"addr"`

	// Via is the name of our node that accepted the connection.
	Via string `json:"via"`
}

// Tagged reports whether the peer is a tagged node.
func (p Peer) Tagged() bool { return len(p.Tags) > 0 }

// connAddr is the LocalAddr of every connection accepted on a tailnet
// listener. It carries the node and the peer's address, and caches the
// peer's WhoIs answer for the connection's requests.
type connAddr struct {
	net.Addr // tsnet's local address of the connection
	node     *node
	remote   netip.AddrPort

	mu     sync.Mutex
	peer   Peer
	peerAt time.Time // zero until the first successful WhoIs
}

// Cache lifetime of a connection's WhoIs answer, and the longest a WhoIs may
// take. Tag or user changes reach a long-lived connection within whoisTTL.
const (
	whoisTTL     = 10 * time.Second
	whoisTimeout = 5 * time.Second
)

// OverTailnet reports whether r arrived on one of this process's tailnet
// listeners. It decides by the connection Caddy (or net/http) accepted
// r on, never by addresses or headers a client controls. Such a request is
// never local, whatever its source address looks like.
func OverTailnet(r *http.Request) bool {
	return tailnetConn(r) != nil
}

// RemoteAddr is the tailnet address and port of the peer that sent r, as the
// node saw it; ok is false when r did not arrive over the tailnet. Unlike
// r.RemoteAddr it cannot be changed by a PROXY protocol header that a
// listener wrapper honoured.
func RemoteAddr(r *http.Request) (addr netip.AddrPort, ok bool) {
	a := tailnetConn(r)
	if a == nil {
		return netip.AddrPort{}, false
	}
	return a.remote, true
}

// Identify tells whether r arrived over the tailnet and, if so, who sent it.
// ok is false for any other request (loopback, LAN, unix socket). With ok
// true and a non-nil error, the request did come over the tailnet but the
// peer is unknown (e.g. the node is shutting down): treat it as
// unauthenticated, never as local.
func Identify(r *http.Request) (peer Peer, ok bool, err error) {
	a := tailnetConn(r)
	if a == nil {
		return Peer{}, false, nil
	}
	p, err := a.whois(r.Context())
	return p, true, err
}

// tailnetConn finds the tailnet connection r arrived on: recorded by
// ConnContext, or as the connection's LocalAddr when nothing wrapped it.
func tailnetConn(r *http.Request) *connAddr {
	ctx := r.Context()
	if a, ok := ctx.Value(connKey{}).(*connAddr); ok {
		return a
	}
	a, _ := ctx.Value(http.LocalAddrContextKey).(*connAddr)
	return a
}

type connKey struct{}

// ConnContext is an http.Server ConnContext hook (Caddy:
// Server.RegisterConnContext) that records whether c is a tailnet
// connection under whatever listener wrappers Caddy put around it. Without
// it, OverTailnet relies on the connection's LocalAddr, which a wrapper may
// replace: Caddy's proxy_protocol wrapper reports the PROXY header's
// addresses, so a tailnet peer it trusts could pass for 127.0.0.1.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if _, done := ctx.Value(connKey{}).(*connAddr); done {
		return ctx
	}
	if tc := unwrapConn(c); tc != nil {
		return context.WithValue(ctx, connKey{}, tc.local)
	}
	return ctx
}

// unwrapConn follows c through connection wrappers down to one of our
// tailnet connections, or returns nil. It knows the ways wrappers expose
// what they wrap: NetConn (crypto/tls), Raw (go-proxyproto, Caddy's
// proxy_protocol) and an embedded net.Conn field (Caddy's http_redirect).
func unwrapConn(c net.Conn) *conn {
	for range maxWrappers {
		switch w := c.(type) {
		case nil:
			return nil
		case *conn:
			return w
		case interface{ NetConn() net.Conn }:
			c = w.NetConn()
		case interface{ Raw() net.Conn }:
			c = w.Raw()
		default:
			c = embeddedConn(c)
		}
	}
	return nil
}

// maxWrappers bounds unwrapConn (a wrapper that returns itself must not
// loop forever).
const maxWrappers = 16

var netConnType = reflect.TypeFor[net.Conn]()

// embeddedConn returns the net.Conn embedded in the struct c points to, or
// nil.
func embeddedConn(c net.Conn) net.Conn {
	v := reflect.ValueOf(c)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Anonymous && f.Type == netConnType && f.IsExported() {
			inner, _ := v.Field(i).Interface().(net.Conn)
			return inner
		}
	}
	return nil
}

// whois asks the node who the peer is, at most once per whoisTTL per
// connection (HTTP/1.1 keep-alive and HTTP/2 send many requests on one).
func (a *connAddr) whois(ctx context.Context) (Peer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.peerAt.IsZero() && time.Since(a.peerAt) < whoisTTL {
		return a.peer, nil
	}
	ctx, cancel := context.WithTimeout(ctx, whoisTimeout)
	defer cancel()
	res, err := a.node.lc.WhoIs(ctx, a.remote.String())
	if err != nil {
		return Peer{}, fmt.Errorf("tailnet whois %s on node %s: %w", a.remote, a.node.name, err)
	}
	if res.Node == nil {
		return Peer{}, fmt.Errorf("tailnet whois %s on node %s: no node in the answer", a.remote, a.node.name)
	}
	p := Peer{
		Tags:     slices.Sorted(slices.Values(res.Node.Tags)),
		NodeName: strings.TrimSuffix(res.Node.Name, "."),
		NodeID:   string(res.Node.StableID),
		Addr:     a.remote,
		Via:      a.node.name,
	}
	if !p.Tagged() && res.UserProfile != nil {
		p.LoginName = res.UserProfile.LoginName
	}
	if !p.Tagged() && p.LoginName == "" {
		return Peer{}, fmt.Errorf("tailnet whois %s on node %s: peer has neither a login nor tags", a.remote, a.node.name)
	}
	a.peer, a.peerAt = p, time.Now()
	return p, nil
}
