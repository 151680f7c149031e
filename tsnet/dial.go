package tsnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"go.uber.org/zap"
)

// Dialer connects out over the tailnet through one of this process's
// nodes: how the gate host reaches a sidecar on another host. It holds a
// reference on the node, like a listener, so the node runs while the
// Dialer is open (also with no listener on it) and a Caddy reload that
// opens the next config's Dialer before closing this one keeps it up.
type Dialer struct {
	n         *node
	closeOnce sync.Once
}

// NewDialer returns a Dialer through the node called name, starting the
// node with settings s if it is not running yet. Like Listen, it returns
// at once; Dial waits for the node.
func NewDialer(name string, s Settings, log *zap.Logger) (*Dialer, error) {
	if err := ValidNodeName(name); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	n := nodes.acquire(name, s, log)
	n.mu.Lock()
	n.dialers++
	n.mu.Unlock()
	return &Dialer{n: n}, nil
}

// Node is the name of the node the Dialer dials through.
func (d *Dialer) Node() string { return d.n.name }

// wait waits until the node is started; the error names address.
func (d *Dialer) wait(ctx context.Context, address string) error {
	n := d.n
	select {
	case <-n.done: // checked first: a stopped node is also ready
		return fmt.Errorf("dialing %s over tailnet node %s: %w", address, n.name, ErrNodeClosed)
	default:
	}
	select {
	case <-n.ready:
		return nil
	case <-n.done:
		return fmt.Errorf("dialing %s over tailnet node %s: %w", address, n.name, ErrNodeClosed)
	case <-ctx.Done():
		return d.notUp(address, ctx.Err())
	}
}

// dial dials through the started node.
func (d *Dialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	n := d.n
	c, err := n.srv.Dial(ctx, network, address)
	switch {
	case err == nil:
		return c, nil
	case ctx.Err() != nil && n.snapshot().State != StateRunning:
		return nil, d.notUp(address, ctx.Err())
	default:
		return nil, fmt.Errorf("dialing %s over tailnet node %s: %w", address, n.name, err)
	}
}

// notUp is the error of a dial that waited in vain for the node.
func (d *Dialer) notUp(address string, err error) error {
	h := d.n.snapshot()
	state := h.State
	if h.Error != "" {
		state += ": " + h.Error
	}
	return fmt.Errorf("dialing %s over tailnet node %s: the node is not up (%s): %w", address, d.n.name, state, err)
}

// Close releases the Dialer's reference on the node; the last reference
// stops the node. Connections already dialed end with the node.
func (d *Dialer) Close() error {
	d.closeOnce.Do(func() {
		d.n.mu.Lock()
		d.n.dialers--
		d.n.mu.Unlock()
		nodes.release(d.n)
	})
	return nil
}

// ErrNodeClosed is the error of a dial through a node that has stopped.
var ErrNodeClosed = errors.New("the node has stopped")
