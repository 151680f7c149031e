package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/clawguard/clawguard/internal/execagent"
)

// pool keeps started containers of one spec ready for new sessions.
type pool struct {
	spec      *spec
	idle      []*box
	refilling bool       // a background refill runs
	fillMu    sync.Mutex // one filler at a time
}

// poolFor returns the pool of s, creating an empty one. Called with m.mu held.
func (m *Manager) poolFor(s *spec) *pool {
	pl := m.pools[s.hash]
	if pl == nil {
		pl = &pool{spec: s}
		m.pools[s.hash] = pl
	}
	return pl
}

// take removes and returns an idle container, or nil, and the idle ones
// whose agent died since it answered its ping (the caller discards them).
// Called with m.mu held.
func (pl *pool) take() (*box, []*box) {
	var dead []*box
	for len(pl.idle) > 0 {
		b := pl.idle[0]
		pl.idle = pl.idle[1:]
		if b.agent == nil || b.agent.alive() {
			return b, dead
		}
		dead = append(dead, b)
	}
	return nil, dead
}

// drop forgets b if it is idle in the pool. Called with m.mu held.
func (pl *pool) drop(b *box) {
	pl.idle = slices.DeleteFunc(pl.idle, func(x *box) bool { return x == b })
}

// refill tops the pool up in the background.
func (m *Manager) refill(pl *pool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || pl.refilling {
		return
	}
	pl.refilling = true
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		err := m.fill(m.base, pl)
		m.mu.Lock()
		pl.refilling = false
		m.mu.Unlock()
		if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
			m.log.Error("warm pool refill", "profile", pl.spec.name, "agent", pl.spec.agent, "err", err)
		}
	}()
}

// fill creates containers until the pool holds pool_size idle ones.
func (m *Manager) fill(ctx context.Context, pl *pool) error {
	pl.fillMu.Lock()
	defer pl.fillMu.Unlock()
	for {
		m.mu.Lock()
		full := len(pl.idle) >= pl.spec.p.PoolSize
		closed := m.closed
		// The pool yields to sessions: it never takes the last free slot.
		atLimit := len(m.boxes)+len(m.creating)+1 >= m.opts.MaxSandboxes
		m.mu.Unlock()
		if closed {
			return ErrClosed
		}
		if full {
			return nil
		}
		if atLimit {
			return fmt.Errorf("sandbox: warm pool: %w (max_sandboxes %d)", ErrLimit, m.opts.MaxSandboxes)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := m.create(ctx, pl.spec, "", "", true)
		if err != nil {
			return err
		}
		m.warmUp(b)
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			m.removeContainer(b.id, "shutting down")
			return ErrClosed
		}
		m.boxes[b.id] = b
		pl.idle = append(pl.idle, b)
		m.mu.Unlock()
		if b.agent != nil && !b.agent.alive() { // it died before it was registered
			m.discard(b, "exec agent failed")
		}
	}
}

// Warm fills the warm pool of agent's profile and waits until it is full.
// Pools of agents named in the config fill on their own at start; those of
// agents matched by "*" fill after the agent's first session, or now.
func (m *Manager) Warm(ctx context.Context, agent string) error {
	s, err := m.specFor(agent)
	if err != nil {
		return err
	}
	if s.p.PoolSize == 0 {
		return fmt.Errorf("sandbox: agent %q: profile %q has no warm pool (pool_size 0)", agent, s.name)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	pl := m.poolFor(s)
	m.execs.Add(1) // Close waits for this fill like for a command
	m.mu.Unlock()
	defer m.execs.Done()
	return m.fill(ctx, pl)
}

// warmUp has a new pool container's agent read the programs this spec's
// recent commands ran (clawguard-agent -warm, which executes nothing), so
// a session's first command does not pay the container's first read of
// them. Best effort, bounded in time.
func (m *Manager) warmUp(b *box) {
	m.mu.Lock()
	names := slices.Clone(b.spec.recent)
	m.mu.Unlock()
	if b.agent == nil || len(names) == 0 {
		return
	}
	argv := append([]string{AgentPath, execagent.WarmArg}, names...)
	s, err := b.agent.start(execagent.Start{Path: AgentPath, Argv: argv, Env: []string{"PATH=" + b.spec.p.Path}, Dir: "/"}, io.Discard, io.Discard)
	if err != nil {
		return
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		if b.agent.kill(s) == nil {
			select {
			case <-s.done:
			case <-time.After(agentKillWait):
				b.agent.fail(errors.New("a warm-up run did not end"))
			}
		}
	}
}

// noteProgram remembers argv0 as one of s's recent programs.
func (m *Manager) noteProgram(s *spec, argv0 string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(s.recent) > 0 && s.recent[0] == argv0 {
		return
	}
	s.recent = slices.DeleteFunc(s.recent, func(x string) bool { return x == argv0 })
	s.recent = slices.Insert(s.recent, 0, argv0)
	if len(s.recent) > maxRecent {
		s.recent = s.recent[:maxRecent]
	}
}
