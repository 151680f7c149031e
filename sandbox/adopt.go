package sandbox

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// adopt takes over this instance's containers left by a previous run. A
// running per-agent or shared container whose profile still hashes the same
// is adopted, and so is a pool container that fits its pool; everything else
// is removed: stopped ones, per-session ones (a session does not outlive the
// sidecar), ones whose profile changed or is gone, duplicates, and ones
// whose exec agent does not answer a new hello and ping (the hello also
// kills whatever the agent still ran for the previous sidecar).
func (m *Manager) adopt(ctx context.Context) error {
	res, err := m.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelSandbox+"=1", LabelInstance+"="+m.opts.Instance),
	})
	if err != nil {
		return fmt.Errorf("sandbox: list containers: %w", err)
	}
	var removeIDs, reasons []string
	remove := func(id, reason string) {
		removeIDs = append(removeIDs, id)
		reasons = append(reasons, reason)
	}
	var cands []*box
	for _, c := range res.Items {
		b, reason := m.adoptable(c)
		if reason != "" {
			remove(c.ID, reason)
			continue
		}
		cands = append(cands, b)
	}
	// Say hello to the agents, all at once.
	connErr := make([]error, len(cands))
	var wg sync.WaitGroup
	for i, b := range cands {
		if b.spec.p.Exec != ExecAgent {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			connErr[i] = m.connectAgent(ctx, b)
		}()
	}
	wg.Wait()
	adopted := 0
	for i, b := range cands {
		reason := ""
		if connErr[i] != nil {
			reason = "exec agent: " + connErr[i].Error()
		} else {
			reason = m.register(b)
		}
		if reason != "" {
			if b.agent != nil {
				b.agent.close(true)
			}
			remove(b.id, reason)
			continue
		}
		adopted++
	}
	for i, id := range removeIDs {
		wg.Add(1)
		go func() { defer wg.Done(); m.removeContainer(id, reasons[i]) }()
		m.log.Info("removing orphaned sandbox", "container", shortID(id), "reason", reasons[i])
	}
	wg.Wait()
	m.log.Info("sandboxes adopted", "adopted", adopted, "removed", len(removeIDs))
	return nil
}

// connectAgent attaches to an adopted container's running agent and
// shakes hands.
func (m *Manager) connectAgent(ctx context.Context, b *box) error {
	if m.agentErr != nil {
		return m.agentErr
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	a, err := attachAgent(ctx, m.cli, b.id, func(err error) { m.agentFailed(b, err) })
	if err != nil {
		return err
	}
	b.agent = a
	if err := a.handshake(ctx); err != nil {
		return err
	}
	return nil
}

// adoptable returns the box c would be, or says why it must go.
func (m *Manager) adoptable(c container.Summary) (*box, string) {
	l := c.Labels
	if c.State != container.StateRunning {
		return nil, "not running"
	}
	isPool := l[LabelPool] == "1"
	scope := Scope(l[LabelScope])
	if scope == ScopeSession && !isPool {
		return nil, "per-session sandbox of a previous run"
	}
	p, ok := m.profiles[l[LabelProfile]]
	if !ok {
		return nil, "its profile is gone"
	}
	if p.Scope != scope {
		return nil, "its profile changed scope"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.specLocked(l[LabelProfile], l[LabelAgent])
	if s.hash != l[LabelHash] || s.agent != l[LabelAgent] {
		return nil, "its profile changed"
	}
	name := ""
	if len(c.Names) > 0 {
		name = c.Names[0][1:]
	}
	b := &box{id: c.ID, name: name, spec: s, created: time.Unix(c.Created, 0), lastUsed: time.Now(), pooled: isPool}
	if !isPool {
		b.key = scopeKey(s, s.agent, "")
	}
	return b, ""
}

// register makes an adoptable box the manager's, or says why it must go.
func (m *Manager) register(b *box) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b.pooled {
		pl := m.poolFor(b.spec)
		if len(pl.idle) >= b.spec.p.PoolSize {
			return "the warm pool is full"
		}
		pl.idle = append(pl.idle, b)
		m.boxes[b.id] = b
		return ""
	}
	if m.byKey[b.key] != nil {
		return "duplicate"
	}
	m.byKey[b.key] = b
	m.boxes[b.id] = b
	return ""
}
