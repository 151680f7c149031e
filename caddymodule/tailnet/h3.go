package tailnet

import (
	"context"
	"net"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// HTTP/3 is not served over the tailnet. Caddy asks every HTTPS listener
// for a QUIC socket too and fails the whole config when a network has
// none, so tailnet listeners get an inert one: no packet ever arrives, and
// clients use HTTP/1.1 or HTTP/2 over TCP. That also keeps every tailnet
// request on a TCP connection Identify can tell apart (a QUIC socket is
// shared by all peers).
func init() {
	caddy.RegisterNetwork(h3Network, listenNoH3)
	caddyhttp.RegisterNetworkHTTP3("tailnet", h3Network)
}

const h3Network = "tailnet-h3"

func listenNoH3(_ context.Context, _, host, portRange string, _ uint, _ net.ListenConfig) (any, error) {
	return &noPackets{addr: h3Addr(host + ":" + portRange), wake: make(chan struct{})}, nil
}

type h3Addr string

func (h3Addr) Network() string  { return h3Network }
func (a h3Addr) String() string { return string(a) }

// noPackets is a net.PacketConn that never receives and drops what is
// written. It honours read deadlines, which quic-go uses to stop reading.
type noPackets struct {
	addr h3Addr

	mu       sync.Mutex
	closed   bool
	deadline time.Time
	wake     chan struct{} // closed and replaced when closed or deadline change
}

func (p *noPackets) ReadFrom([]byte) (int, net.Addr, error) {
	for {
		p.mu.Lock()
		closed, deadline, wake := p.closed, p.deadline, p.wake
		p.mu.Unlock()
		if closed {
			return 0, nil, &net.OpError{Op: "read", Net: h3Network, Addr: p.addr, Err: net.ErrClosed}
		}
		if deadline.IsZero() {
			<-wake
			continue
		}
		d := time.Until(deadline)
		if d <= 0 {
			return 0, nil, &net.OpError{Op: "read", Net: h3Network, Addr: p.addr, Err: os.ErrDeadlineExceeded}
		}
		t := time.NewTimer(d)
		select {
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// WriteTo drops p: there is no peer to send QUIC packets to.
func (p *noPackets) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }

func (p *noPackets) Close() error {
	p.update(func() { p.closed = true })
	return nil
}

func (p *noPackets) LocalAddr() net.Addr { return p.addr }

func (p *noPackets) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

func (p *noPackets) SetReadDeadline(t time.Time) error {
	p.update(func() { p.deadline = t })
	return nil
}

func (p *noPackets) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer and SetWriteBuffer spare quic-go's "not a *net.UDPConn"
// warning about buffer sizes: there is no buffer to size.
func (p *noPackets) SetReadBuffer(int) error  { return nil }
func (p *noPackets) SetWriteBuffer(int) error { return nil }

// update changes the state and wakes blocked readers.
func (p *noPackets) update(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
	close(p.wake)
	p.wake = make(chan struct{})
}

var _ net.PacketConn = (*noPackets)(nil)
