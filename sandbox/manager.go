package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
)

// SecretSource supplies the values of profile secrets (the vault).
type SecretSource interface {
	// Get returns the value of the named entry, or an error.
	Get(name string) ([]byte, error)
}

// Options configure a Manager.
type Options struct {
	// Client is the Docker client (see NewClient). Required; the caller
	// closes it after the Manager.
	Client *client.Client
	// Instance separates this sidecar's containers from any other's on the
	// same Docker host (label clawguard.instance): it must stay the same
	// across restarts to adopt them. Required; letters, digits, '-', '_'.
	Instance string
	// Profiles by agent name, "*" for any other agent. Checked with
	// CheckProfile.
	Profiles map[string]Profile
	// WorkspaceRoot is the host directory every workspace and mount source
	// must lie in. Required, absolute.
	WorkspaceRoot string
	// ProtectedPaths are host paths no bind may contain (the state dir).
	ProtectedPaths []string
	// Secrets resolves profile secrets. Nil: a profile with secrets fails its
	// commands rather than running them without.
	Secrets SecretSource
	// Logger receives structured logs. Default: discard.
	Logger *slog.Logger
	// Registerer receives the sandbox metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// PruneInterval is how often idle and old containers are removed.
	// Default 30s; negative disables the background pruning (Prune still
	// works).
	PruneInterval time.Duration
	// AgentPath is the clawguard-agent binary mounted into the sandboxes
	// of "exec": "agent" profiles. Default: FindAgent. When there is none,
	// those profiles' commands fail with an error saying what is missing;
	// "exec": "docker" profiles work without it.
	AgentPath string
	// MaxSandboxes caps the containers this manager runs at once, warm
	// pools included, so a flood of new sessions cannot exhaust the host.
	// Default DefaultMaxSandboxes.
	MaxSandboxes int
}

// DefaultMaxSandboxes is the default of Options.MaxSandboxes.
const DefaultMaxSandboxes = 32

// Errors callers can test for with errors.Is.
var (
	ErrClosed    = errors.New("sandbox manager is shut down")
	ErrNoProfile = errors.New("no sandbox profile")
	ErrNotFound  = errors.New("no such sandbox")
	ErrLimit     = errors.New("sandbox limit reached")
)

var instanceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// Manager owns the sandbox containers of one sidecar instance.
type Manager struct {
	cli      *client.Client
	opts     Options
	log      *slog.Logger
	root     string
	profiles map[string]Profile
	metrics  *metrics

	agentPath string // the checked agent binary, or
	agentErr  error  // why there is none

	base   context.Context // cancelled by Close: running commands are killed
	cancel context.CancelFunc
	execs  sync.WaitGroup
	bg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	boxes    map[string]*box // by container ID
	byKey    map[string]*box
	creating map[string]chan struct{} // keys being created
	specs    map[string]*spec         // by profile + agent
	pools    map[string]*pool         // by spec hash
}

// New checks the profiles, adopts this instance's running containers that
// still match their profile, removes the rest (stopped ones, per-session ones
// from a previous run, ones whose profile changed or is gone), and starts
// filling the warm pools of named agents.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Client == nil {
		return nil, errors.New("sandbox: Options.Client is required")
	}
	if !instanceRE.MatchString(opts.Instance) {
		return nil, fmt.Errorf("sandbox: instance %q must be 1 to 32 letters, digits, '-' or '_'", opts.Instance)
	}
	if err := CheckWorkspaceRoot(opts.WorkspaceRoot, opts.ProtectedPaths); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	m := &Manager{
		cli:      opts.Client,
		opts:     opts,
		log:      opts.Logger,
		root:     filepath.Clean(opts.WorkspaceRoot),
		profiles: map[string]Profile{},
		boxes:    map[string]*box{},
		byKey:    map[string]*box{},
		creating: map[string]chan struct{}{},
		specs:    map[string]*spec{},
		pools:    map[string]*pool{},
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.opts.MaxSandboxes <= 0 {
		m.opts.MaxSandboxes = DefaultMaxSandboxes
	}
	for name, p := range opts.Profiles {
		cp, err := CheckProfile(name, p, m.root, opts.ProtectedPaths)
		if err != nil {
			return nil, err
		}
		m.profiles[name] = cp
	}
	needAgent := false
	for _, p := range m.profiles {
		needAgent = needAgent || p.Exec == ExecAgent
	}
	if needAgent {
		if opts.AgentPath != "" {
			m.agentPath, m.agentErr = CheckAgent(opts.AgentPath)
		} else {
			m.agentPath, m.agentErr = FindAgent()
		}
		if m.agentErr != nil {
			m.log.Error("sandbox exec agent unavailable: commands of \"exec\": \"agent\" profiles fail", "err", m.agentErr)
		} else {
			m.log.Info("sandbox exec agent", "path", m.agentPath)
		}
	}
	m.metrics = newMetrics(m)
	if opts.Registerer != nil {
		if err := m.metrics.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("sandbox: metrics: %w", err)
		}
	}
	ping, err := m.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		return nil, fmt.Errorf("sandbox: docker engine not reachable (DOCKER_HOST=%q): %w", m.cli.DaemonHost(), err)
	}
	m.log.Info("docker engine", "host", m.cli.DaemonHost(), "api_version", m.cli.ClientVersion(), "engine_api", ping.APIVersion)
	m.base, m.cancel = context.WithCancel(context.Background())
	if err := m.adopt(ctx); err != nil {
		m.cancel()
		return nil, err
	}
	for name, p := range m.profiles {
		if p.PoolSize > 0 && name != "*" {
			m.mu.Lock()
			pl := m.poolFor(m.specLocked(name, name))
			m.mu.Unlock()
			m.refill(pl)
		}
	}
	if iv := opts.PruneInterval; iv >= 0 {
		if iv == 0 {
			iv = 30 * time.Second
		}
		m.bg.Add(1)
		go m.pruneLoop(iv)
	}
	return m, nil
}

// profileFor returns the profile name and spec that apply to agent.
func (m *Manager) specFor(agent string) (*spec, error) {
	if !ValidName(agent) {
		return nil, fmt.Errorf("sandbox: invalid agent name %q", agent)
	}
	name := agent
	if _, ok := m.profiles[name]; !ok {
		name = "*"
		if _, ok := m.profiles[name]; !ok {
			return nil, fmt.Errorf("sandbox: agent %q: %w (no %q or \"*\" entry in sandboxes)", agent, ErrNoProfile, agent)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.specLocked(name, agent), nil
}

func (m *Manager) specLocked(name, agent string) *spec {
	k := name + "\x00" + agent
	if s := m.specs[k]; s != nil {
		return s
	}
	s := newSpec(name, agent, m.profiles[name], m.root)
	m.specs[k] = s
	return s
}

// Profile returns the profile (defaults applied) that applies to agent:
// its own, else "*". The approvals engine resolves argv[0] with its Path.
func (m *Manager) Profile(agent string) (Profile, error) {
	s, err := m.specFor(agent)
	if err != nil {
		return Profile{}, err
	}
	return s.p, nil
}

// scopeKey names the container a command of (agent, session) runs in.
func scopeKey(s *spec, agent, session string) string {
	switch s.p.Scope {
	case ScopeSession:
		return "session\x00" + s.name + "\x00" + agent + "\x00" + session
	case ScopeAgent:
		return "agent\x00" + s.name + "\x00" + agent
	}
	return "shared\x00" + s.name
}

// acquire returns the container for key, creating it (or taking one from
// the warm pool) if needed, with one more command counted on it. A pool it
// took from is returned for refilling once the command is done, so the
// refill's container start does not slow that first command down.
func (m *Manager) acquire(ctx context.Context, s *spec, key, session string) (b *box, created bool, taken *pool, err error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, false, nil, ErrClosed
		}
		if b := m.byKey[key]; b != nil && !b.gone {
			b.inflight++
			b.lastUsed = time.Now()
			m.mu.Unlock()
			return b, false, nil, nil
		}
		if ch := m.creating[key]; ch != nil {
			m.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, false, nil, ctx.Err()
			}
		}
		var pl *pool
		if s.p.PoolSize > 0 {
			pl = m.poolFor(s)
			b, dead := pl.take()
			for _, d := range dead {
				m.bg.Add(1)
				go func() { defer m.bg.Done(); m.discard(d, "exec agent failed") }()
			}
			if b != nil {
				b.key, b.session = key, session
				b.inflight++
				b.lastUsed = time.Now()
				m.byKey[key] = b
				m.mu.Unlock()
				return b, false, pl, nil
			}
		}
		if n := len(m.boxes) + len(m.creating); n >= m.opts.MaxSandboxes {
			m.mu.Unlock()
			return nil, false, nil, fmt.Errorf("sandbox: %w (%d running, max_sandboxes %d)", ErrLimit, n, m.opts.MaxSandboxes)
		}
		ch := make(chan struct{})
		m.creating[key] = ch
		m.mu.Unlock()

		b, err := m.create(ctx, s, key, session, false)

		m.mu.Lock()
		delete(m.creating, key)
		close(ch)
		if err == nil {
			if m.closed { // Close ran meanwhile: it did not see this one
				m.mu.Unlock()
				m.removeContainer(b.id, "shutting down")
				return nil, false, nil, ErrClosed
			}
			b.inflight++
			m.boxes[b.id] = b
			m.byKey[key] = b
		}
		m.mu.Unlock()
		if pl != nil {
			m.refill(pl)
		}
		return b, err == nil, nil, err
	}
}

// release ends one command on b.
func (m *Manager) release(b *box) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b.inflight--
	b.lastUsed = time.Now()
}

// discard forgets b and removes its container (a command timed out or was
// cancelled in it, it stopped, or it is being deleted). Commands still
// running in it end with an error.
func (m *Manager) discard(b *box, reason string) {
	m.mu.Lock()
	first := m.forgetLocked(b)
	m.mu.Unlock()
	if first {
		if b.agent != nil {
			b.agent.close(false)
		}
		m.removeContainer(b.id, reason)
		m.log.Info("sandbox removed", "container", shortID(b.id), "scope", b.spec.p.Scope, "profile", b.spec.name, "reason", reason)
	}
}

// forgetLocked marks b gone so it is never handed out again; it reports
// whether b was still known (whoever gets true removes the container).
func (m *Manager) forgetLocked(b *box) bool {
	if b.gone {
		return false
	}
	b.gone = true
	delete(m.boxes, b.id)
	if m.byKey[b.key] == b {
		delete(m.byKey, b.key)
	}
	if pl := m.pools[b.spec.hash]; pl != nil {
		pl.drop(b)
	}
	return true
}

// Sandbox describes one container for listings.
type Sandbox struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Scope      Scope     `json:"scope"`
	Profile    string    `json:"profile"`
	Agent      string    `json:"agent,omitempty"`
	Session    string    `json:"session,omitempty"`
	ConfigHash string    `json:"config_hash"`
	Pooled     bool      `json:"pooled"` // idle in the warm pool, or taken from it
	Running    int       `json:"running_commands"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
}

// List returns the sandboxes this manager owns, oldest first.
func (m *Manager) List() []Sandbox {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Sandbox, 0, len(m.boxes))
	for _, b := range m.boxes {
		out = append(out, Sandbox{
			ID: b.id, Name: b.name, Scope: b.spec.p.Scope, Profile: b.spec.name, Agent: b.spec.agent,
			Session: b.session, ConfigHash: b.spec.hash, Pooled: b.pooled, Running: b.inflight,
			CreatedAt: b.created, LastUsedAt: b.lastUsed,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// Remove removes the sandbox with the given ID (full, or a prefix of at
// least 12 characters), killing commands running in it. Only this manager's
// sandboxes can be removed; anything else is ErrNotFound.
func (m *Manager) Remove(id string) error {
	m.mu.Lock()
	var found *box
	if len(id) >= 12 {
		for bid, b := range m.boxes {
			if strings.HasPrefix(bid, id) {
				found = b
				break
			}
		}
	}
	m.mu.Unlock()
	if found == nil {
		return fmt.Errorf("sandbox %q: %w", id, ErrNotFound)
	}
	m.discard(found, "deleted")
	return nil
}

// Close shuts the manager down: new commands are refused, running ones are
// killed (their containers removed), per-session and pool containers are
// removed; per-agent and shared ones stay for the next start to adopt.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()

	done := make(chan struct{})
	go func() { m.execs.Wait(); m.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("sandbox: shutdown: %w", ctx.Err())
	}
	m.mu.Lock()
	var drop []*box
	for _, b := range m.boxes {
		if b.spec.p.Scope == ScopeSession {
			drop = append(drop, b)
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, b := range drop {
		wg.Add(1)
		go func() { defer wg.Done(); m.discard(b, "shutdown") }()
	}
	wg.Wait()
	// The per-agent and shared sandboxes stay; their agents wait for the
	// next sidecar's hello.
	m.mu.Lock()
	for _, b := range m.boxes {
		if b.agent != nil {
			b.agent.close(true)
		}
	}
	m.mu.Unlock()
	return nil
}

// Ping checks that the Docker Engine answers.
func (m *Manager) Ping(ctx context.Context) error {
	if _, err := m.cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("sandbox: docker engine: %w", err)
	}
	return nil
}
