package tsnet

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// rawConn wraps like go-proxyproto's Conn (Caddy's proxy_protocol): it
// reports addresses of its own and exposes the real connection as Raw.
type rawConn struct {
	net.Conn
	claimed net.Addr
}

func (c *rawConn) Raw() net.Conn        { return c.Conn }
func (c *rawConn) LocalAddr() net.Addr  { return c.claimed }
func (c *rawConn) RemoteAddr() net.Addr { return c.claimed }

// embeddingConn wraps like Caddy's http_redirect: an embedded net.Conn
// beside fields of its own, and no accessor.
type embeddingConn struct {
	net.Conn
	_ int
}

// selfConn claims to wrap itself.
type selfConn struct{ net.Conn }

func (c *selfConn) Raw() net.Conn { return c }

func TestConnContextUnwraps(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	peer := netip.MustParseAddrPort("100.64.0.7:41000")
	tc := &conn{Conn: a, local: &connAddr{Addr: a.LocalAddr(), remote: peer}}
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}

	for _, tt := range []struct {
		name string
		c    net.Conn
		want bool
	}{
		{"tailnet conn", tc, true},
		{"tls", tls.Server(tc, &tls.Config{}), true},
		{"proxy protocol", &rawConn{Conn: tc, claimed: loopback}, true},
		{"embedded", &embeddingConn{Conn: tc}, true},
		{"tls over embedded over proxy protocol", tls.Server(&embeddingConn{Conn: &rawConn{Conn: tc, claimed: loopback}}, &tls.Config{}), true},
		{"other conn", b, false},
		{"proxy protocol over other conn", &rawConn{Conn: b, claimed: loopback}, false},
		{"wrapper of itself", &selfConn{Conn: b}, false},
		{"nil embedded", &embeddingConn{}, false},
	} {
		ctx := ConnContext(context.Background(), tt.c)
		// What net/http records as the connection's LocalAddr when a PROXY
		// header claimed loopback.
		ctx = context.WithValue(ctx, http.LocalAddrContextKey, loopback)
		r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
		r.RemoteAddr = "127.0.0.1:1234"
		got := OverTailnet(r)
		addr, ok := RemoteAddr(r)
		if got != tt.want || ok != tt.want {
			t.Errorf("%s: OverTailnet = %v, RemoteAddr ok = %v; want %v", tt.name, got, ok, tt.want)
		}
		if tt.want && addr != peer {
			t.Errorf("%s: RemoteAddr = %v, want the peer's tailnet address %v", tt.name, addr, peer)
		}
	}

	// Registered twice (two gates in one server), the hook adds nothing.
	ctx := ConnContext(context.Background(), tc)
	if again := ConnContext(ctx, tc); again != ctx {
		t.Error("ConnContext is not idempotent")
	}
	// Without the hook, an unwrapped tailnet connection is still known by
	// its LocalAddr.
	r := httptest.NewRequestWithContext(context.WithValue(context.Background(), http.LocalAddrContextKey, tc.LocalAddr()), "GET", "/", nil)
	if !OverTailnet(r) {
		t.Error("LocalAddr of a tailnet connection not recognised")
	}
}
