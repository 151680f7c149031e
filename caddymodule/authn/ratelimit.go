package authn

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// RateLimit is the failed-attempt policy: Attempts failures within Window
// lock the client out for Lockout.
type RateLimit struct {
	Attempts int
	Window   time.Duration
	Lockout  time.Duration
}

// DefaultRateLimit is on unless the configuration turns it off: 10 failures a
// minute, then 5 minutes of 429.
var DefaultRateLimit = RateLimit{Attempts: 10, Window: time.Minute, Lockout: 5 * time.Minute}

// Limiter counts authentication failures per client key. Lookups for clients
// that never failed cost one map miss under a read lock.
type Limiter struct {
	cfg    RateLimit
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

const (
	limiterShards = 32
	// limiterMaxKeys bounds memory under a flood from many addresses (each
	// entry is ~100 bytes plus Attempts timestamps).
	limiterMaxKeys = 1 << 17
)

type limiterShard struct {
	mu      sync.RWMutex
	entries map[string]*limiterEntry
}

type limiterEntry struct {
	failures    []time.Time // ring of the most recent failures
	next        int
	lockedUntil time.Time
}

// NewLimiter returns a limiter for cfg (Attempts must be positive).
func NewLimiter(cfg RateLimit) *Limiter {
	l := &Limiter{cfg: cfg, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].entries = map[string]*limiterEntry{}
	}
	return l
}

// Config returns the limiter's policy.
func (l *Limiter) Config() RateLimit { return l.cfg }

func (l *Limiter) shard(key string) *limiterShard {
	return &l.shards[maphash.String(l.seed, key)%limiterShards]
}

// Locked reports whether key is locked out at now and for how long still.
func (l *Limiter) Locked(key string, now time.Time) (bool, time.Duration) {
	s := l.shard(key)
	s.mu.RLock()
	e := s.entries[key]
	var until time.Time
	if e != nil {
		until = e.lockedUntil
	}
	s.mu.RUnlock()
	if now.Before(until) {
		return true, until.Sub(now)
	}
	return false, 0
}

// Fail records a failed attempt by key at now. It reports whether key is now
// locked out and for how long.
func (l *Limiter) Fail(key string, now time.Time) (bool, time.Duration) {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil {
		if len(s.entries) >= limiterMaxKeys/limiterShards {
			s.evict(now, l.cfg.Window)
		}
		e = &limiterEntry{failures: make([]time.Time, l.cfg.Attempts)}
		s.entries[key] = e
	}
	if now.Before(e.lockedUntil) {
		return true, e.lockedUntil.Sub(now)
	}
	e.failures[e.next] = now
	e.next = (e.next + 1) % len(e.failures)
	// The ring is full of failures within the window when its oldest slot
	// (the next to be overwritten) is recent enough.
	if oldest := e.failures[e.next]; !oldest.IsZero() && now.Sub(oldest) < l.cfg.Window {
		e.lockedUntil = now.Add(l.cfg.Lockout)
		clear(e.failures)
		return true, l.cfg.Lockout
	}
	return false, 0
}

// evict makes room: stale entries first, else one arbitrary entry.
func (s *limiterShard) evict(now time.Time, window time.Duration) {
	for k, e := range s.entries {
		if e.stale(now, window) {
			delete(s.entries, k)
		}
	}
	if len(s.entries) < limiterMaxKeys/limiterShards {
		return
	}
	for k := range s.entries {
		delete(s.entries, k)
		return
	}
}

func (e *limiterEntry) stale(now time.Time, window time.Duration) bool {
	if now.Before(e.lockedUntil) {
		return false
	}
	for _, f := range e.failures {
		if !f.IsZero() && now.Sub(f) < window {
			return false
		}
	}
	return true
}

// Sweep drops entries that no longer affect decisions; call it periodically.
func (l *Limiter) Sweep(now time.Time) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, e := range s.entries {
			if e.stale(now, l.cfg.Window) {
				delete(s.entries, k)
			}
		}
		s.mu.Unlock()
	}
}

// ClientKey is the rate-limiting key of a client: its IPv4 address, or its
// IPv6 /64 (one host usually owns a whole /64). A browser page of a foreign
// origin gets a key of its own, so a hostile page that guesses from the
// user's own machine locks out itself, not the user.
func ClientKey(ip netip.Addr, foreignOrigin string) string {
	ip = ip.Unmap()
	var key string
	if ip.Is6() && !ip.IsLoopback() {
		p, _ := ip.Prefix(64)
		key = p.String()
	} else {
		key = ip.String()
	}
	if foreignOrigin != "" {
		key += " origin=" + foreignOrigin
	}
	return key
}
