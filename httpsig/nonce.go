package httpsig

import (
	"container/heap"
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultMaxNonces is the replay cache's default capacity: measured at 5.3 MB
// full (about 53 bytes an entry: a 16-byte key in a map and a heap slot).
const DefaultMaxNonces = 100_000

// NonceCache remembers the nonces of accepted signatures so that a replay
// within max_age is refused. Its memory is bounded by its capacity and it
// never accepts a replay because it forgot a nonce. The invariant is:
//
//	every nonce ever accepted whose created is >= horizon is still in the cache.
//
// Dropping an entry (because it expired, or to make room under pressure)
// raises the horizon past it, and a signature created before the horizon is
// refused without looking at its nonce. A new cache's horizon is its start
// time, so a restarted verifier cannot be fooled with nonces its predecessor
// saw. One cache may be shared by several Verifiers (e.g. across a config
// reload) and is safe for concurrent use; sharers should use the same MaxAge
// (a shorter one drops nonces early, which makes the others refuse, never
// accept, older signatures).
//
// The cache lives in process memory: Verifiers with separate caches (in
// other processes, or given other caches) do not see each other's nonces, so
// a signature accepted by one is accepted once by each of the others too.
// Verifiers accepting the same key should share a cache, or use their own
// keys.
type NonceCache struct {
	mu       sync.Mutex
	capacity int
	seen     map[nonceKey]struct{}
	order    nonceHeap // by created, oldest first
	horizon  int64     // signatures created before this are refused
	shedTo   int64     // highest created shed under pressure (not expired)
}

type nonceKey [16]byte

type nonceEntry struct {
	created int64
	key     nonceKey
}

// NewNonceCache returns a cache for at most capacity nonces (DefaultMaxNonces
// if capacity <= 0) that refuses signatures created before start.
func NewNonceCache(capacity int, start time.Time) *NonceCache {
	if capacity <= 0 {
		capacity = DefaultMaxNonces
	}
	return &NonceCache{
		capacity: capacity,
		seen:     make(map[nonceKey]struct{}),
		horizon:  start.Unix(),
		shedTo:   -1,
	}
}

// Len returns the number of nonces held.
func (c *NonceCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// use records the nonce of a verified signature. It fails with replay when
// the nonce was seen for this key within the window, expired when created is
// before the horizon, and replay_cache_full when the cache is full of nonces
// at least as new as this one. Entries created before now-maxAge are dropped
// first: the verifier refuses such signatures anyway.
func (c *NonceCache) use(keyid, nonce string, created int64, now time.Time, maxAge time.Duration) *Error {
	k := makeNonceKey(keyid, nonce)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refusal(k, created, now, maxAge); err != nil {
		return err
	}
	if len(c.seen) >= c.capacity {
		if c.order[0].created >= created {
			return refuse(CodeReplayCacheFull, "the replay cache is full of nonces at least as new as this signature; sign the request again later")
		}
		c.shedTo = max(c.shedTo, c.drop())
	}
	c.seen[k] = struct{}{}
	heap.Push(&c.order, nonceEntry{created: created, key: k})
	return nil
}

// check is use without recording the nonce: the refusal a replay, or a
// signature before the horizon, would get. The verifier asks before it reads
// a body and records the nonce (use) only once the body matched.
func (c *NonceCache) check(keyid, nonce string, created int64, now time.Time, maxAge time.Duration) *Error {
	k := makeNonceKey(keyid, nonce)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusal(k, created, now, maxAge)
}

// refusal drops the entries created before now-maxAge, then refuses k if it
// was seen or created is before the horizon. c.mu must be held.
func (c *NonceCache) refusal(k nonceKey, created int64, now time.Time, maxAge time.Duration) *Error {
	oldest := now.Add(-maxAge).Unix() // created < oldest is refused as expired
	for len(c.order) > 0 && c.order[0].created < oldest {
		c.drop()
	}
	if created < c.horizon {
		if created <= c.shedTo {
			return refuse(CodeReplayCacheFull, "the replay cache is full and had to shed nonces created at or before %s; sign the request again",
				time.Unix(c.shedTo, 0).UTC().Format(time.RFC3339))
		}
		return refuse(CodeExpired, "signature created at %s is older than the replay cache's horizon %s (the verifier restarted or the window passed); sign the request again",
			time.Unix(created, 0).UTC().Format(time.RFC3339), time.Unix(c.horizon, 0).UTC().Format(time.RFC3339))
	}
	if _, dup := c.seen[k]; dup {
		return refuse(CodeReplay, "nonce was already used within the last %s", maxAge)
	}
	return nil
}

// drop removes the oldest entry, raises the horizon past it, and returns its
// created time.
func (c *NonceCache) drop() int64 {
	e := heap.Pop(&c.order).(nonceEntry)
	delete(c.seen, e.key)
	c.horizon = max(c.horizon, e.created+1)
	return e.created
}

// makeNonceKey binds the nonce to its key id (different clients may pick the
// same nonce) and fixes the entry size whatever the nonce's length.
func makeNonceKey(keyid, nonce string) nonceKey {
	h := sha256.New()
	h.Write([]byte(keyid))
	h.Write([]byte{0})
	h.Write([]byte(nonce))
	var k nonceKey
	copy(k[:], h.Sum(nil))
	return k
}

type nonceHeap []nonceEntry

func (h nonceHeap) Len() int           { return len(h) }
func (h nonceHeap) Less(i, j int) bool { return h[i].created < h[j].created }
func (h nonceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nonceHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *nonceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

var _ heap.Interface = (*nonceHeap)(nil)
