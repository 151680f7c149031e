package tsnet

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// watches holds the process's peer watches. Like nodes, they outlive Caddy
// configs: a reload that keeps a peer's spec hands the running watch, and
// with it the peer's history and counters, to the new config.
var watches = &watchPool{byName: make(map[string]*watch)}

type watchPool struct {
	mu     sync.Mutex
	byName map[string]*watch // newest watch per peer name
}

// PeerWatch is a reference on the probing of one peer; Close releases it.
type PeerWatch struct {
	w         *watch
	closeOnce sync.Once
}

// WatchPeer starts probing spec (defaults filled in) through the node
// spec.Via with settings s, or joins the running watch of that peer when
// its spec and node settings are the same. It returns at once; the first
// probe waits for the node like any dial. The watch keeps the node
// running until its last PeerWatch is closed.
func WatchPeer(spec PeerSpec, s Settings, log *zap.Logger) (*PeerWatch, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Via == "" {
		return nil, fmt.Errorf("peer %s: via: no node to dial through", spec.Name)
	}
	if log == nil {
		log = zap.NewNop()
	}
	watches.mu.Lock()
	defer watches.mu.Unlock()
	cur := watches.byName[spec.Name]
	if cur != nil && !cur.closing && cur.spec == spec && cur.settings.equal(s) {
		cur.refs++
		return &PeerWatch{w: cur}, nil
	}
	d, err := NewDialer(spec.Via, s, log)
	if err != nil {
		return nil, err
	}
	w := newWatch(spec, s, d, log)
	w.refs = 1
	watches.byName[spec.Name] = w
	go w.run()
	return &PeerWatch{w: w}, nil
}

// Close releases the reference; the last one stops the probing, waits for
// a probe in flight to end and releases the node.
func (p *PeerWatch) Close() error {
	p.closeOnce.Do(func() { watches.release(p.w) })
	return nil
}

func (wp *watchPool) release(w *watch) {
	wp.mu.Lock()
	w.refs--
	last := w.refs == 0
	if last {
		w.closing = true
	}
	wp.mu.Unlock()
	if !last {
		return
	}
	w.cancel()
	<-w.done
	w.prober.close()
	w.dialer.Close()
	wp.mu.Lock()
	if wp.byName[w.spec.Name] == w {
		delete(wp.byName, w.spec.Name)
	}
	wp.mu.Unlock()
}

// current returns the newest watch of peer name, or nil.
func (wp *watchPool) current(name string) *watch {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	return wp.byName[name]
}

// all returns the newest watch of every peer.
func (wp *watchPool) all() []*watch {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	out := make([]*watch, 0, len(wp.byName))
	for _, w := range wp.byName {
		out = append(out, w)
	}
	return out
}

// watch probes one peer every interval until it is released.
type watch struct {
	spec     PeerSpec
	settings Settings // the via node's, so a changed node gets a new watch
	dialer   *Dialer
	prober   *prober
	log      *zap.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{} // closed when run has returned

	refs    int  // guarded by watchPool.mu
	closing bool // guarded by watchPool.mu

	mu     sync.Mutex
	health PeerHealth
}

func newWatch(spec PeerSpec, s Settings, d *Dialer, log *zap.Logger) *watch {
	ctx, cancel := context.WithCancel(context.Background())
	return &watch{
		spec:     spec,
		settings: s,
		dialer:   d,
		prober:   newProber(spec, d),
		log:      log.With(zap.String("peer", spec.Name), zap.String("address", spec.Address), zap.String("via", spec.Via)),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		health: PeerHealth{Peer: spec.Name, Address: spec.Address, Via: spec.Via,
			State: PeerUnknown, Since: time.Now()},
	}
}

// run probes at once and then every interval. A probe ends within the
// timeout, which is shorter than the interval, so probes never overlap.
func (w *watch) run() {
	defer close(w.done)
	t := time.NewTicker(w.spec.Interval)
	defer t.Stop()
	for {
		r := w.prober.probe(w.ctx)
		if w.ctx.Err() != nil {
			return // released mid-probe: not the peer's fault
		}
		w.record(r)
		select {
		case <-t.C:
		case <-w.ctx.Done():
			return
		}
	}
}

// record keeps a probe's result and logs a change of state once.
func (w *watch) record(r probeResult) {
	now := time.Now()
	w.mu.Lock()
	h := &w.health
	prev := h.State
	h.Probes++
	if r.err == "" {
		h.State, h.Up = PeerUp, true
		h.LastSeen = now
		h.LatencyMS = float64(r.latency.Microseconds()) / 1000
	} else {
		h.State, h.Up = PeerDown, false
		h.Failures++
		h.LastError, h.LastErrorAt = r.err, now
	}
	if h.State != prev {
		h.Since = now
	}
	state, since := h.State, h.Since
	w.mu.Unlock()
	switch {
	case state == prev:
	case state == PeerDown:
		w.log.Warn("tailnet peer down", zap.String("error", r.err), zap.Time("since", since))
	default:
		w.log.Info("tailnet peer up", zap.Duration("latency", r.latency))
	}
}

func (w *watch) snapshot() PeerHealth {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.health
}
