package tsnet

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"go.uber.org/zap"
)

// Listen serves port on the tailnet node called name, starting the node
// with settings s if it is not running yet. It returns at once: Accept
// blocks until the node is up and a peer connects, so a slow or failing
// node never delays the caller. Listeners on the same node and port share
// one tsnet listener (a Caddy reload overlaps the old and the new config's
// listeners); closing the last one on a node stops the node.
//
// This is the whole API a program without Caddy (the sidecar) needs.
func Listen(name string, s Settings, port uint16, log *zap.Logger) (net.Listener, error) {
	if err := ValidNodeName(name); err != nil {
		return nil, err
	}
	if port == 0 {
		return nil, fmt.Errorf("tailnet/%s: listening needs an explicit port", name)
	}
	if log == nil {
		log = zap.NewNop()
	}
	n := nodes.acquire(name, s, log)
	sl := n.share(port)
	l := &Listener{sl: sl, conns: make(chan net.Conn), closed: make(chan struct{})}
	sl.mu.Lock()
	sl.views = append(sl.views, l)
	sl.viewsChangedLocked()
	sl.mu.Unlock()
	return l, nil
}

// share returns the node's shared listener on port with a reference taken.
func (n *node) share(port uint16) *sharedListener {
	n.mu.Lock()
	defer n.mu.Unlock()
	sl := n.listeners[port]
	if sl == nil {
		sl = &sharedListener{
			node:    n,
			port:    port,
			stop:    make(chan struct{}),
			done:    make(chan struct{}),
			changed: make(chan struct{}),
		}
		n.listeners[port] = sl
		go sl.pump()
	}
	sl.refs++
	return sl
}

// sharedListener is the one tsnet listener on a node's port. Its pump hands
// each accepted connection to the newest open view: during a reload that
// is the new config's server, so no connection lands on a server that is
// shutting down (net/http drops requests read after Shutdown began).
type sharedListener struct {
	node *node
	port uint16
	stop chan struct{} // closed when the last view is closed
	done chan struct{} // closed when pump has returned

	refs int // guarded by node.mu

	mu      sync.Mutex
	ln      net.Listener  // tsnet's, once the node is started
	views   []*Listener   // open views, oldest first
	changed chan struct{} // closed and replaced whenever views changes
}

func (sl *sharedListener) viewsChangedLocked() {
	close(sl.changed)
	sl.changed = make(chan struct{})
}

func (sl *sharedListener) pump() {
	defer close(sl.done)
	n := sl.node
	select {
	case <-n.ready:
	case <-sl.stop:
		return
	}
	ln, err := n.srv.Listen("tcp", ":"+strconv.Itoa(int(sl.port)))
	if err != nil {
		n.setState(StateFailed, fmt.Sprintf("listening on tailnet port %d: %v", sl.port, err))
		return
	}
	sl.mu.Lock()
	select {
	case <-sl.stop:
		sl.mu.Unlock()
		ln.Close()
		return
	default:
		sl.ln = ln
	}
	sl.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by release or by the node's shutdown
		}
		if !sl.deliver(newConn(c, n)) {
			c.Close()
			return
		}
	}
}

// deliver hands c to the newest open view, re-picking when views change
// while it waits; it reports false when the listener is stopping.
func (sl *sharedListener) deliver(c net.Conn) bool {
	for {
		sl.mu.Lock()
		var conns chan net.Conn // nil (never ready) without views
		if len(sl.views) > 0 {
			conns = sl.views[len(sl.views)-1].conns
		}
		changed := sl.changed
		sl.mu.Unlock()
		select {
		case conns <- c:
			return true
		case <-changed:
		case <-sl.stop:
			return false
		}
	}
}

// release drops a view's reference; the last one closes the tsnet listener
// before another share of the port can open a new one.
func (sl *sharedListener) release() {
	n := sl.node
	n.mu.Lock()
	sl.refs--
	last := sl.refs == 0
	if last {
		delete(n.listeners, sl.port)
		sl.mu.Lock()
		close(sl.stop)
		if sl.ln != nil {
			sl.ln.Close()
		}
		sl.mu.Unlock()
	}
	n.mu.Unlock()
	if last {
		<-sl.done
	}
	nodes.release(n)
}

// Listener is one user's view of a shared tailnet listener: closing it
// stops only its own Accept calls.
type Listener struct {
	sl        *sharedListener
	conns     chan net.Conn // unbuffered: the pump hands over, or re-picks
	closeOnce sync.Once
	closed    chan struct{}
}

// Accept waits for the next connection over the tailnet.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "tailnet", Addr: l.Addr(), Err: net.ErrClosed}
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "tailnet", Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Close stops this view; the node keeps running while other views use it.
func (l *Listener) Close() error {
	err := error(&net.OpError{Op: "close", Net: "tailnet", Addr: l.Addr(), Err: net.ErrClosed})
	l.closeOnce.Do(func() {
		close(l.closed)
		sl := l.sl
		sl.mu.Lock()
		sl.views = slices.DeleteFunc(sl.views, func(v *Listener) bool { return v == l })
		sl.viewsChangedLocked()
		sl.mu.Unlock()
		sl.release()
		err = nil
	})
	return err
}

// Addr is tailnet/<node>:<port>.
func (l *Listener) Addr() net.Addr { return Addr{Node: l.sl.node.name, Port: l.sl.port} }

// Node returns the name of the node the listener serves on.
func (l *Listener) Node() string { return l.sl.node.name }

// Addr is the address of a tailnet listener.
type Addr struct {
	Node string
	Port uint16
}

// Network is "tailnet", the Caddy network name.
func (Addr) Network() string { return "tailnet" }

func (a Addr) String() string { return "tailnet/" + a.Node + ":" + strconv.Itoa(int(a.Port)) }

// conn is a connection accepted over the tailnet. Its LocalAddr is the
// *connAddr that Identify finds in a request's context
// (http.LocalAddrContextKey), so the gate learns the connection came over
// the tailnet from the connection itself, not from its source address.
type conn struct {
	net.Conn
	local *connAddr
}

func newConn(c net.Conn, n *node) *conn {
	remote, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return &conn{Conn: c, local: &connAddr{Addr: c.LocalAddr(), node: n, remote: remote}}
}

func (c *conn) LocalAddr() net.Addr { return c.local }

// Interface guards
var (
	_ net.Listener = (*Listener)(nil)
	_ net.Addr     = Addr{}
	_ net.Conn     = (*conn)(nil)
)
