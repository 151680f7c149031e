package tsnet

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"tailscale.com/client/local"
	"tailscale.com/envknob"
	"tailscale.com/health"
	"tailscale.com/ipn"
	ts "tailscale.com/tsnet"

	"github.com/clawguard/clawguard/statedir"
)

// Node states reported by Health and the admin API.
const (
	StateStarting         = "starting"           // tsnet coming up, or waiting for the control server
	StateNeedsLogin       = "needs_login"        // no (valid) auth key: visit the logged login URL
	StateNeedsMachineAuth = "needs_machine_auth" // an admin must approve the node
	StateRunning          = "running"            // on the tailnet, listeners accept
	StateStopped          = "stopped"            // the backend was stopped
	StateFailed           = "failed"             // could not start; retried with backoff
)

// nodes holds the process's tailnet nodes. It outlives Caddy configs: a
// reload hands the running node to the new config instead of starting a
// second one on the same state (the "listener already open" failure).
var nodes = &pool{byName: make(map[string]*node)}

type pool struct {
	mu     sync.Mutex
	byName map[string]*node // newest node per name
}

// acquire returns the node called name with settings s and takes a
// reference on it. A node with other settings under the same name is
// superseded: the new one starts once the old one's last reference is gone,
// as both would use the same state directory and tailnet name.
func (p *pool) acquire(name string, s Settings, log *zap.Logger) *node {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.byName[name]
	if cur != nil && !cur.closing && cur.settings.equal(s) {
		cur.refs++
		return cur
	}
	n := newNode(name, s, cur, log)
	n.refs = 1
	p.byName[name] = n
	go n.run()
	return n
}

// release drops a reference; the last one stops the node and waits for it.
func (p *pool) release(n *node) {
	p.mu.Lock()
	n.refs--
	last := n.refs == 0
	if last {
		n.closing = true
	}
	p.mu.Unlock()
	if !last {
		return
	}
	n.cancel()
	<-n.done
	p.mu.Lock()
	if p.byName[n.name] == n {
		delete(p.byName, n.name)
	}
	p.mu.Unlock()
}

// current returns the newest node called name, or nil.
func (p *pool) current(name string) *node {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byName[name]
}

// Server returns the Tailscale server of the node called name once it has
// started, or nil: for tests that wait on its DERP home or check that a
// reload kept the very same node.
func Server(name string) *ts.Server {
	n := nodes.current(name)
	if n == nil {
		return nil
	}
	select {
	case <-n.ready:
		return n.srv
	default:
		return nil
	}
}

// all returns the newest node of every name.
func (p *pool) all() []*node {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*node, 0, len(p.byName))
	for _, n := range p.byName {
		out = append(out, n)
	}
	return out
}

// node is one tsnet.Server and the listeners on it.
type node struct {
	name     string
	settings Settings
	log      *zap.Logger
	prev     *node // superseded node of the same name; run waits for it
	ctx      context.Context
	cancel   context.CancelFunc
	ready    chan struct{} // closed once srv and lc are set
	done     chan struct{} // closed when run has returned and srv is closed

	refs    int  // guarded by pool.mu
	closing bool // guarded by pool.mu

	srv  *ts.Server      // written once before ready closes
	lc   *local.Client   // srv's LocalClient, for WhoIs
	lcTr *http.Transport // lc's, so run can drop its idle connections

	mu        sync.Mutex
	health    NodeHealth
	listeners map[uint16]*sharedListener
	dialers   int // open Dialers
}

func newNode(name string, s Settings, prev *node, log *zap.Logger) *node {
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{
		name:      name,
		settings:  s,
		log:       log.With(zap.String("node", name)),
		prev:      prev,
		ctx:       ctx,
		cancel:    cancel,
		ready:     make(chan struct{}),
		done:      make(chan struct{}),
		listeners: make(map[uint16]*sharedListener),
	}
	n.health = NodeHealth{Node: name, Hostname: s.Hostname, State: StateStarting, Since: time.Now()}
	return n
}

// Retry delays after a failed start: retryMin, doubling up to retryMax.
var (
	retryMin = time.Second
	retryMax = time.Minute
)

// SetRetry sets how long a node waits before it tries a failed start
// again: first, then doubling up to most (default 1 s and 1 min). Tests of
// failing nodes shorten it; call it before any node starts.
func SetRetry(first, most time.Duration) { retryMin, retryMax = first, most }

// run starts the tsnet server in the background, so a slow or unreachable
// control server never holds up Caddy's config load, retries failed starts
// and then follows the node's state until the node is released.
func (n *node) run() {
	defer close(n.done)
	if n.prev != nil {
		select {
		case <-n.prev.done:
		case <-n.ctx.Done():
			return
		}
	}
	if err := n.settings.err; err != nil {
		n.setState(StateFailed, err.Error())
		<-n.ctx.Done()
		return
	}
	delay := retryMin
	for {
		srv, err := n.start()
		if err == nil {
			n.follow()
			srv.Close()
			// The LocalAPI server's shutdown spares a connection dialled
			// but not yet used (a request cancelled by the release):
			// close it, and with it the goroutines on both ends.
			n.lcTr.CloseIdleConnections()
			return
		}
		n.setState(StateFailed, err.Error())
		select {
		case <-time.After(delay):
		case <-n.ctx.Done():
			return
		}
		delay = min(2*delay, retryMax)
	}
}

// start creates and starts the tsnet server. Start only brings up the local
// backend; logging in to the control server continues in the background.
func (n *node) start() (*ts.Server, error) {
	s := n.settings
	if err := statedir.Ensure(s.Dir); err != nil {
		return nil, fmt.Errorf("tailnet node %s: %w", n.name, err)
	}
	// Tailscale's support-log upload is process-wide and on by default;
	// a security sidecar sends nothing to third parties unasked.
	envknob.SetNoLogsNoSupport()
	srv := &ts.Server{
		Dir:           s.Dir,
		Hostname:      s.Hostname,
		ControlURL:    s.ControlURL,
		AuthKey:       s.AuthKey,
		Ephemeral:     s.Ephemeral,
		AdvertiseTags: s.Tags,
		UserLogf:      n.logf(false),
		Logf:          n.logf(true),
	}
	if err := srv.Start(); err != nil {
		// A Start that failed before building its subsystems has nothing to
		// close (and Close would dereference them).
		if srv.Sys() != nil {
			srv.Close()
		}
		return nil, fmt.Errorf("tailnet node %s: %s", n.name, n.redact(err.Error()))
	}
	lc, err := srv.LocalClient()
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("tailnet node %s: %s", n.name, n.redact(err.Error()))
	}
	// Set before lc's first request, which would fix its default transport.
	n.lcTr = &http.Transport{DialContext: lc.Dial}
	lc.Transport = n.lcTr
	n.srv, n.lc = srv, lc
	close(n.ready)
	return srv, nil
}

// follow tracks the backend's state and health until the node is released.
func (n *node) follow() {
	w, err := n.lc.WatchIPNBus(n.ctx, ipn.NotifyInitialState|ipn.NotifyInitialHealthState|ipn.NotifyNoNetMap)
	if err != nil {
		if n.ctx.Err() == nil {
			n.setState(StateFailed, "watching node state: "+err.Error())
			<-n.ctx.Done()
		}
		return
	}
	defer w.Close()
	state, problem := StateStarting, ""
	for {
		msg, err := w.Next()
		if err != nil {
			return // released: the watch's context is done
		}
		if msg.State != nil {
			state = stateName(*msg.State)
		}
		if msg.Health != nil {
			problem = healthProblem(msg.Health)
		}
		if msg.ErrMessage != nil {
			problem = *msg.ErrMessage
		}
		n.setState(state, problem)
		if msg.State != nil && *msg.State == ipn.Running {
			n.refreshIPs()
		}
	}
}

func stateName(s ipn.State) string {
	switch s {
	case ipn.Running:
		return StateRunning
	case ipn.NeedsLogin:
		return StateNeedsLogin
	case ipn.NeedsMachineAuth:
		return StateNeedsMachineAuth
	case ipn.Stopped:
		return StateStopped
	default:
		return StateStarting
	}
}

// healthProblem summarises the backend's medium and high warnings, most
// severe first. Low ones ("Tailscale is starting", "update available")
// are not problems of a node that serves.
func healthProblem(st *health.State) string {
	var ws []health.UnhealthyState
	for _, w := range st.Warnings {
		if w.Severity == health.SeverityMedium || w.Severity == health.SeverityHigh {
			ws = append(ws, w)
		}
	}
	slices.SortFunc(ws, func(a, b health.UnhealthyState) int {
		if a.Severity != b.Severity {
			if a.Severity == health.SeverityHigh {
				return -1
			}
			return 1
		}
		return strings.Compare(string(a.WarnableCode), string(b.WarnableCode))
	})
	msgs := make([]string, 0, len(ws))
	for _, w := range ws {
		msgs = append(msgs, w.Text)
	}
	return strings.Join(msgs, "; ")
}

func (n *node) refreshIPs() {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	st, err := n.lc.StatusWithoutPeers(ctx)
	if err != nil {
		return
	}
	n.mu.Lock()
	n.health.TailnetIPs = slices.Clone(st.TailscaleIPs)
	if st.Self != nil {
		n.health.DNSName = strings.TrimSuffix(st.Self.DNSName, ".")
	}
	n.mu.Unlock()
}

// setState records the node's state and logs changes. problem is the
// current error ("" when healthy); it is redacted before it is kept.
func (n *node) setState(state, problem string) {
	problem = n.redact(problem)
	n.mu.Lock()
	h := &n.health
	changed := h.State != state
	newProblem := problem != "" && problem != h.Error
	if changed {
		h.State, h.Since = state, time.Now()
	}
	h.Error = problem
	if problem != "" {
		h.LastError, h.LastErrorAt = problem, time.Now()
	}
	n.mu.Unlock()
	switch {
	case newProblem:
		n.log.Warn("tailnet node problem; other listeners keep serving", zap.String("state", state), zap.String("error", problem))
	case changed:
		n.log.Info("tailnet node state", zap.String("state", state))
	}
}

// logf routes tsnet's logs to zap, always through redact. The verbose
// backend log goes to debug and is skipped unless debug logging is on.
func (n *node) logf(verbose bool) func(string, ...any) {
	if verbose && !n.log.Core().Enabled(zap.DebugLevel) {
		return nil
	}
	log := n.log.Named("tsnet")
	return func(format string, args ...any) {
		msg := n.redact(fmt.Sprintf(format, args...))
		if verbose {
			log.Debug(msg)
		} else {
			log.Info(msg)
		}
	}
}

// redact removes the auth key from text bound for logs, errors and health.
func (n *node) redact(text string) string {
	if k := n.settings.AuthKey; k != "" {
		text = strings.ReplaceAll(text, k, "[redacted auth key]")
	}
	return text
}
