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
// sidecar), ones whose profile changed or is gone, duplicates.
func (m *Manager) adopt(ctx context.Context) error {
	res, err := m.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelSandbox+"=1", LabelInstance+"="+m.opts.Instance),
	})
	if err != nil {
		return fmt.Errorf("sandbox: list containers: %w", err)
	}
	var removeIDs, reasons []string
	adopted := 0
	for _, c := range res.Items {
		if reason := m.adoptOne(c); reason != "" {
			removeIDs = append(removeIDs, c.ID)
			reasons = append(reasons, reason)
			continue
		}
		adopted++
	}
	var wg sync.WaitGroup
	for i, id := range removeIDs {
		wg.Add(1)
		go func() { defer wg.Done(); m.removeContainer(id, reasons[i]) }()
		m.log.Info("removing orphaned sandbox", "container", shortID(id), "reason", reasons[i])
	}
	wg.Wait()
	m.log.Info("sandboxes adopted", "adopted", adopted, "removed", len(removeIDs))
	return nil
}

// adoptOne adopts c, or says why it must go.
func (m *Manager) adoptOne(c container.Summary) string {
	l := c.Labels
	if c.State != container.StateRunning {
		return "not running"
	}
	isPool := l[LabelPool] == "1"
	scope := Scope(l[LabelScope])
	if scope == ScopeSession && !isPool {
		return "per-session sandbox of a previous run"
	}
	p, ok := m.profiles[l[LabelProfile]]
	if !ok {
		return "its profile is gone"
	}
	if p.Scope != scope {
		return "its profile changed scope"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.specLocked(l[LabelProfile], l[LabelAgent])
	if s.hash != l[LabelHash] || s.agent != l[LabelAgent] {
		return "its profile changed"
	}
	name := ""
	if len(c.Names) > 0 {
		name = c.Names[0][1:]
	}
	b := &box{id: c.ID, name: name, spec: s, created: time.Unix(c.Created, 0), lastUsed: time.Now(), pooled: isPool}
	if isPool {
		pl := m.poolFor(s)
		if len(pl.idle) >= p.PoolSize {
			return "the warm pool is full"
		}
		pl.idle = append(pl.idle, b)
		m.boxes[b.id] = b
		return ""
	}
	b.key = scopeKey(s, s.agent, "")
	if m.byKey[b.key] != nil {
		return "duplicate"
	}
	m.byKey[b.key] = b
	m.boxes[b.id] = b
	return ""
}
