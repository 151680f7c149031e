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

// Class tells apart clients that share an address but not a fate, so that
// failures of one never lock out another: a local process, a proxy on this
// host relaying others' requests, a web page of a foreign origin, and the
// pairing protocol each count on their own.
type Class uint8

// Client classes of a LimitKey.
const (
	// ClassDirect is a client that reached the gate itself (or through a
	// proxy Caddy's trusted_proxies names, which tells its clients apart).
	ClassDirect Class = iota
	// ClassLocal is a process on this machine whose request qualifies for
	// local trust.
	ClassLocal
	// ClassRelayed is a loopback peer carrying proxy or client-IP headers:
	// a proxy on this host relaying somebody else's request.
	ClassRelayed
	// ClassForeign is a browser page of a foreign origin.
	ClassForeign
	// ClassPairing counts refused pairing messages; its lockout blocks only
	// the pairing protocol.
	ClassPairing
)

// LimitKey is what the limiter counts failures under. It is built from
// what the gate determined (never from a raw client-supplied string such as
// an Origin), so a client cannot mint fresh keys to escape its lockout.
type LimitKey struct {
	// Site is the gate's site (its listener addresses, or the admin
	// listener), so that one site's lockouts never block another's clients.
	Site string
	// Class is the kind of client.
	Class Class
	// Client is the client's address: an IPv4 /32, or an IPv6 /64 (one
	// host usually owns a whole /64); loopback IPv6 as /128.
	Client netip.Prefix
}

// Key returns the limit key of a client at ip.
func Key(site string, class Class, ip netip.Addr) LimitKey {
	ip = ip.Unmap()
	bits := ip.BitLen()
	if ip.Is6() && !ip.IsLoopback() {
		bits = 64
	}
	p, _ := ip.Prefix(bits) // an invalid ip gives the zero prefix: one bucket for all of them
	return LimitKey{Site: site, Class: class, Client: p}
}

// Limiter counts authentication failures per LimitKey. Lookups for clients
// that never failed cost one map miss under a read lock and allocate
// nothing.
type Limiter struct {
	cfg    RateLimit
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

const (
	limiterShards = 32
	// limiterMaxKeys bounds memory under a flood from many addresses (each
	// entry is ~150 bytes plus Attempts timestamps). When a shard is full,
	// eviction spares lockouts (see evict).
	limiterMaxKeys = 1 << 17
)

type limiterShard struct {
	mu      sync.RWMutex
	entries map[LimitKey]*limiterEntry
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
		l.shards[i].entries = map[LimitKey]*limiterEntry{}
	}
	return l
}

// Config returns the limiter's policy.
func (l *Limiter) Config() RateLimit { return l.cfg }

func (l *Limiter) shard(key LimitKey) *limiterShard {
	return &l.shards[maphash.Comparable(l.seed, key)%limiterShards]
}

// Locked reports whether key is locked out at now and for how long still.
func (l *Limiter) Locked(key LimitKey, now time.Time) (bool, time.Duration) {
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
func (l *Limiter) Fail(key LimitKey, now time.Time) (bool, time.Duration) {
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

// evict makes room under a flood of new keys without handing the flood a
// way to free locked-out clients: stale entries go first; then, in one
// pass, an eighth of the shard's unlocked entries, those with the fewest
// recent failures (so the next evictions are far apart); a lockout only
// when every entry is one, the one that ends soonest.
func (s *limiterShard) evict(now time.Time, window time.Duration) {
	for k, e := range s.entries {
		if e.stale(now, window) {
			delete(s.entries, k)
		}
	}
	const shardCap = limiterMaxKeys / limiterShards
	if len(s.entries) < shardCap {
		return
	}
	// Unlocked entries by their count of recent failures.
	byCount := map[int][]LimitKey{}
	var soonest LimitKey
	var soonestUntil time.Time
	for k, e := range s.entries {
		if now.Before(e.lockedUntil) {
			if soonestUntil.IsZero() || e.lockedUntil.Before(soonestUntil) {
				soonest, soonestUntil = k, e.lockedUntil
			}
			continue
		}
		n := e.recent(now, window)
		byCount[n] = append(byCount[n], k)
	}
	if len(byCount) == 0 {
		delete(s.entries, soonest)
		return
	}
	quota := shardCap / 8
	for n := 0; quota > 0 && len(byCount) > 0; n++ {
		for _, k := range byCount[n] {
			if quota == 0 {
				break
			}
			delete(s.entries, k)
			quota--
		}
		delete(byCount, n)
	}
}

// recent counts the failures within window.
func (e *limiterEntry) recent(now time.Time, window time.Duration) int {
	n := 0
	for _, f := range e.failures {
		if !f.IsZero() && now.Sub(f) < window {
			n++
		}
	}
	return n
}

func (e *limiterEntry) stale(now time.Time, window time.Duration) bool {
	return !now.Before(e.lockedUntil) && e.recent(now, window) == 0
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
