package httpsig

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultMaxNonces is the replay cache's default capacity: measured at 5.3 MB
// full (about 53 bytes an entry: a 16-byte key in a map and a heap slot).
const DefaultMaxNonces = 100_000

// Sharding of the replay cache: a shard per minShardNonces of capacity, at
// most maxNonceShards, so concurrent verifications seldom wait for one lock.
const (
	maxNonceShards = 16
	minShardNonces = 1024
)

// NonceCache remembers the nonces of accepted signatures so that a replay
// within max_age is refused. Its memory is bounded by its capacity and it
// never accepts a replay because it forgot a nonce.
//
// It is split into shards, each with its own lock and an equal share of the
// capacity, and a (keyid, nonce) always falls in the same shard, chosen by
// the hash that binds the two. A full shard is a full cache for the nonces
// that fall in it, so a cache under pressure sheds (or refuses with
// replay_cache_full) a little before it holds capacity nonces in all. Every
// shard keeps the invariant:
//
//	every nonce ever accepted whose created is >= the shard's horizon is
//	still in the shard.
//
// Dropping an entry (because it expired, or to make room under pressure)
// raises its shard's horizon past it, and a signature created before the
// horizon of its shard is refused without looking at its nonce. A new
// cache's horizon is its start time, so a restarted verifier cannot be
// fooled with nonces its predecessor saw. One cache may be shared by
// several Verifiers (e.g. across a config reload) and is safe for
// concurrent use; sharers should use the same MaxAge (a shorter one drops
// nonces early, which makes the others refuse, never accept, older
// signatures).
//
// The cache lives in process memory: Verifiers with separate caches (in
// other processes, or given other caches) do not see each other's nonces, so
// a signature accepted by one is accepted once by each of the others too.
// Verifiers accepting the same key should share a cache, or use their own
// keys.
type NonceCache struct {
	shards []nonceShard
}

// nonceShard is one lock's part of a NonceCache.
type nonceShard struct {
	mu       sync.Mutex
	capacity int
	seen     map[nonceKey]struct{}
	order    nonceHeap // by created, oldest first
	horizon  int64     // signatures created before this are refused
	shedTo   int64     // highest created shed under pressure (not expired)
	_        [64]byte  // keeps neighbouring shards' locks off one cache line
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
	n := 1
	for n < maxNonceShards && 2*n*minShardNonces <= capacity {
		n *= 2
	}
	return newNonceCache(capacity, n, start)
}

// newNonceCache splits capacity over n shards.
func newNonceCache(capacity, n int, start time.Time) *NonceCache {
	c := &NonceCache{shards: make([]nonceShard, n)}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.capacity = capacity / n
		if i < capacity%n {
			sh.capacity++
		}
		sh.seen = make(map[nonceKey]struct{})
		sh.horizon = start.Unix()
		sh.shedTo = -1
	}
	return c
}

// Len returns the number of nonces held.
func (c *NonceCache) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.seen)
		sh.mu.Unlock()
	}
	return n
}

func (c *NonceCache) shard(k nonceKey) *nonceShard {
	return &c.shards[binary.LittleEndian.Uint32(k[:4])%uint32(len(c.shards))]
}

// use records the nonce of a verified signature. It fails with replay when
// the nonce was seen for this key within the window, expired when created is
// before the horizon, and replay_cache_full when the shard is full of nonces
// at least as new as this one. Entries created before now-maxAge are dropped
// first: the verifier refuses such signatures anyway.
func (c *NonceCache) use(k nonceKey, created int64, now time.Time, maxAge time.Duration) *Error {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if err := sh.refusal(k, created, now, maxAge); err != nil {
		return err
	}
	if len(sh.seen) >= sh.capacity {
		if sh.order[0].created >= created {
			return refuse(CodeReplayCacheFull, "the replay cache is full of nonces at least as new as this signature; sign the request again later")
		}
		sh.shedTo = max(sh.shedTo, sh.drop())
	}
	sh.seen[k] = struct{}{}
	sh.order.push(nonceEntry{created: created, key: k})
	return nil
}

// check is use without recording the nonce: the refusal a replay, or a
// signature before the horizon, would get. The verifier asks before it reads
// a body and records the nonce (use) only once the body matched.
func (c *NonceCache) check(k nonceKey, created int64, now time.Time, maxAge time.Duration) *Error {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.refusal(k, created, now, maxAge)
}

// refusal drops the entries created before now-maxAge, then refuses k if it
// was seen or created is before the horizon. sh.mu must be held.
func (sh *nonceShard) refusal(k nonceKey, created int64, now time.Time, maxAge time.Duration) *Error {
	oldest := now.Add(-maxAge).Unix() // created < oldest is refused as expired
	for len(sh.order) > 0 && sh.order[0].created < oldest {
		sh.drop()
	}
	if created < sh.horizon {
		if created <= sh.shedTo {
			return refuse(CodeReplayCacheFull, "the replay cache is full and had to shed nonces created at or before %s; sign the request again",
				time.Unix(sh.shedTo, 0).UTC().Format(time.RFC3339))
		}
		return refuse(CodeExpired, "signature created at %s is older than the replay cache's horizon %s (the verifier restarted or the window passed); sign the request again",
			time.Unix(created, 0).UTC().Format(time.RFC3339), time.Unix(sh.horizon, 0).UTC().Format(time.RFC3339))
	}
	if _, dup := sh.seen[k]; dup {
		return refuse(CodeReplay, "nonce was already used within the last %s", maxAge)
	}
	return nil
}

// drop removes the oldest entry, raises the horizon past it, and returns its
// created time.
func (sh *nonceShard) drop() int64 {
	e := sh.order.pop()
	delete(sh.seen, e.key)
	sh.horizon = max(sh.horizon, e.created+1)
	return e.created
}

// makeNonceKey binds the nonce to its key id (different clients may pick the
// same nonce) and fixes the entry size whatever the nonce's length.
func makeNonceKey(keyid, nonce string) nonceKey {
	var buf [2*maxParamLength + 1]byte // both are at most maxParamLength
	sum := sha256.Sum256(append(append(append(buf[:0], keyid...), 0), nonce...))
	return nonceKey(sum[:len(nonceKey{})])
}

// nonceHeap is a min-heap by created (container/heap would box every entry).
type nonceHeap []nonceEntry

func (h *nonceHeap) push(e nonceEntry) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if s[parent].created <= s[i].created {
			break
		}
		s[parent], s[i] = s[i], s[parent]
		i = parent
	}
}

func (h *nonceHeap) pop() nonceEntry {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		least := i
		for _, child := range [2]int{2*i + 1, 2*i + 2} {
			if child < len(s) && s[child].created < s[least].created {
				least = child
			}
		}
		if least == i {
			break
		}
		s[i], s[least] = s[least], s[i]
		i = least
	}
	*h = s
	return top
}
