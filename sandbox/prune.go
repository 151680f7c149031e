package sandbox

import (
	"time"
)

// Prune removes containers idle longer than their profile's idle_timeout
// and idle ones older than max_age (pool containers only by age), then tops
// the pools up again. It returns how many it removed.
func (m *Manager) Prune() int {
	now := time.Now()
	type victim struct {
		b      *box
		reason string
	}
	var drop []victim
	refill := map[*pool]bool{}
	m.mu.Lock()
	for _, b := range m.boxes {
		if b.inflight > 0 {
			continue
		}
		p := b.spec.p
		reason := ""
		switch {
		case now.Sub(b.created) > time.Duration(p.MaxAge):
			reason = "max age"
		case b.key != "" && now.Sub(b.lastUsed) > time.Duration(p.IdleTimeout):
			reason = "idle"
		default:
			continue
		}
		if b.key == "" {
			refill[m.pools[b.spec.hash]] = true
		}
		m.forgetLocked(b)
		drop = append(drop, victim{b, reason})
	}
	m.mu.Unlock()
	for _, v := range drop {
		m.removeContainer(v.b.id, v.reason)
		m.log.Info("sandbox removed", "container", shortID(v.b.id), "scope", v.b.spec.p.Scope, "profile", v.b.spec.name, "reason", v.reason)
	}
	for pl := range refill {
		m.refill(pl)
	}
	return len(drop)
}

func (m *Manager) pruneLoop(every time.Duration) {
	defer m.bg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.base.Done():
			return
		case <-t.C:
			m.Prune()
		}
	}
}
