package httpsig

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func expectUse(t *testing.T, c *NonceCache, keyid, nonce string, created int64, now time.Time, maxAge time.Duration, code string) {
	t.Helper()
	err := c.use(makeNonceKey(keyid, nonce), created, now, maxAge)
	got := ""
	if err != nil {
		got = err.Code
	}
	if got != code {
		t.Errorf("use(%s, %s, created %d, now %d) = %v, want %q", keyid, nonce, created, now.Unix(), err, code)
	}
}

func TestNonceCacheReplay(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	c := NewNonceCache(10, t0)
	expectUse(t, c, "k", "n1", t0.Unix(), t0, time.Minute, "")
	expectUse(t, c, "k", "n1", t0.Unix(), t0, time.Minute, CodeReplay)
	expectUse(t, c, "k", "n1", t0.Unix()+5, t0.Add(5*time.Second), time.Minute, CodeReplay) // same nonce, new created
	expectUse(t, c, "k2", "n1", t0.Unix(), t0, time.Minute, "")
	// keyid and nonce are hashed together unambiguously.
	expectUse(t, c, "k\x00n", "1", t0.Unix(), t0, time.Minute, "")
	if c.Len() != 3 {
		t.Errorf("Len = %d, want 3", c.Len())
	}
}

// TestNonceCacheRestart: a new cache (a restarted gate) has not seen the old
// one's nonces, so it must refuse every signature created before it started.
func TestNonceCacheRestart(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	old := NewNonceCache(10, t0)
	expectUse(t, old, "k", "n1", t0.Unix()+10, t0.Add(10*time.Second), time.Minute, "")
	restarted := NewNonceCache(10, t0.Add(20*time.Second))
	expectUse(t, restarted, "k", "n1", t0.Unix()+10, t0.Add(21*time.Second), time.Minute, CodeExpired)
	expectUse(t, restarted, "k", "n2", t0.Unix()+20, t0.Add(21*time.Second), time.Minute, "")
}

// TestNonceCacheExpiryAndClockJump: expired nonces are dropped (memory goes
// down), and even if the clock then jumps back, a dropped nonce's signature
// is refused rather than accepted again.
func TestNonceCacheExpiryAndClockJump(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	c := NewNonceCache(100, t0)
	for i := range 50 {
		expectUse(t, c, "k", fmt.Sprint(i), t0.Unix(), t0, time.Minute, "")
	}
	later := t0.Add(2 * time.Minute)
	expectUse(t, c, "k", "fresh", later.Unix(), later, time.Minute, "")
	if c.Len() != 1 {
		t.Errorf("Len after expiry = %d, want 1", c.Len())
	}
	back := t0.Add(time.Second) // the clock jumped back
	expectUse(t, c, "k", "7", t0.Unix(), back, time.Minute, CodeExpired)
}

// TestNonceCacheFull: under pressure the cache sheds its oldest nonce and
// refuses every signature as old as the shed one; when it is full of nonces
// as new as the incoming one, it refuses the newcomer. It never forgets a
// nonce whose signature it would still accept.
func TestNonceCacheFull(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	now := t0.Add(10 * time.Second)
	c := NewNonceCache(3, t0)
	for i := range int64(3) {
		expectUse(t, c, "k", fmt.Sprint(i), t0.Unix()+i, now, time.Minute, "")
	}
	expectUse(t, c, "k", "3", t0.Unix()+3, now, time.Minute, "") // sheds nonce 0 (created t0)
	if c.Len() != 3 {
		t.Errorf("Len = %d, want 3", c.Len())
	}
	expectUse(t, c, "k", "0", t0.Unix(), now, time.Minute, CodeReplayCacheFull)   // the shed nonce replayed
	expectUse(t, c, "k", "new", t0.Unix(), now, time.Minute, CodeReplayCacheFull) // as old as the shed one
	expectUse(t, c, "k", "1", t0.Unix()+1, now, time.Minute, CodeReplay)          // still held
	expectUse(t, c, "k", "x", t0.Unix()+1, now, time.Minute, CodeReplayCacheFull) // not newer than the oldest held

	full := NewNonceCache(2, t0)
	expectUse(t, full, "k", "a", now.Unix(), now, time.Minute, "")
	expectUse(t, full, "k", "b", now.Unix(), now, time.Minute, "")
	expectUse(t, full, "k", "c", now.Unix(), now, time.Minute, CodeReplayCacheFull)
	expectUse(t, full, "k", "a", now.Unix(), now, time.Minute, CodeReplay)
	next := now.Add(time.Second)
	expectUse(t, full, "k", "d", next.Unix(), next, time.Minute, "")
	expectUse(t, full, "k", "a", now.Unix(), next, time.Minute, CodeReplayCacheFull)
}

// TestNonceCacheNeverAcceptsAReplay runs random traffic (replays, old and
// future created times, clock jumps) through a small cache, whole and in
// shards, and checks against a model that remembers every accepted
// signature forever: no (keyid, nonce, created) is ever accepted twice, and
// the cache stays within its capacity.
func TestNonceCacheNeverAcceptsAReplay(t *testing.T) {
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) { neverAcceptsAReplay(t, shards) })
	}
}

func neverAcceptsAReplay(t *testing.T, shards int) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Unix(1_800_000_000, 0)
	const capacity, maxAge = 16, 20 * time.Second
	c := newNonceCache(capacity, shards, t0)
	accepted := map[string]bool{}
	var sent []string
	clock := t0
	nAccepted := 0
	for i := range 20000 {
		// Bursts, lulls (the cache drains) and clock jumps back.
		switch p := rng.IntN(100); {
		case p < 90:
			clock = clock.Add(time.Duration(rng.IntN(100)) * time.Millisecond)
		case p < 98:
			clock = clock.Add(time.Duration(rng.IntN(10_000)) * time.Millisecond)
		default:
			clock = clock.Add(-time.Duration(rng.IntN(15_000)) * time.Millisecond)
		}
		var keyid, nonce string
		var created int64
		if len(sent) > 0 && rng.IntN(3) == 0 {
			recent := sent[max(0, len(sent)-64):] // replays of recent requests
			fmt.Sscanf(recent[rng.IntN(len(recent))], "%s %s %d", &keyid, &nonce, &created)
		} else {
			keyid = fmt.Sprint("k", rng.IntN(3))
			nonce = fmt.Sprint(rng.IntN(200))
			created = clock.Unix() - int64(rng.IntN(25)) + 3
		}
		id := fmt.Sprintf("%s %s %d", keyid, nonce, created)
		sent = append(sent, id)
		// The verifier's own time checks come first.
		if age := clock.Sub(time.Unix(created, 0)); age > maxAge || age < -MaxFutureSkew {
			continue
		}
		if err := c.use(makeNonceKey(keyid, nonce), created, clock, maxAge); err == nil {
			if accepted[id] {
				t.Fatalf("step %d: replay of %s accepted", i, id)
			}
			accepted[id] = true
			nAccepted++
		}
		if n := c.Len(); n > capacity {
			t.Fatalf("step %d: %d entries, capacity %d", i, n, capacity)
		}
	}
	if nAccepted < 1000 {
		t.Errorf("only %d of 20000 requests accepted: the cache refuses too much", nAccepted)
	}
}

// TestNonceCacheShards: a large cache is split into shards whose capacities
// add up to its own, and a small one is not split.
func TestNonceCacheShards(t *testing.T) {
	for _, tc := range []struct{ capacity, shards int }{
		{1, 1}, {2047, 1}, {2048, 2}, {10_000, 8}, {DefaultMaxNonces, maxNonceShards}, {10 * DefaultMaxNonces, maxNonceShards},
	} {
		c := NewNonceCache(tc.capacity, time.Unix(0, 0))
		total := 0
		for i := range c.shards {
			total += c.shards[i].capacity
		}
		if len(c.shards) != tc.shards || total != tc.capacity {
			t.Errorf("capacity %d: %d shards holding %d, want %d shards", tc.capacity, len(c.shards), total, tc.shards)
		}
	}
}

// shardedKeys returns, for each shard of c, n nonces of keyid "k" that fall
// in it.
func shardedKeys(c *NonceCache, n int) [][]string {
	byShard := make([][]string, len(c.shards))
	for i, full := 0, 0; full < len(c.shards); i++ {
		nonce := fmt.Sprint("n", i)
		s, j := c.shard(makeNonceKey("k", nonce)), 0
		for &c.shards[j] != s {
			j++
		}
		if len(byShard[j]) < n {
			if byShard[j] = append(byShard[j], nonce); len(byShard[j]) == n {
				full++
			}
		}
	}
	return byShard
}

// TestNonceCacheShardedReplays attacks a cache of four shards: replays in
// every shard are refused; an expired nonce, dropped from its shard, is not
// accepted again even after the clock jumps back; and a full shard sheds
// its oldest nonce, refuses that nonce's replay and anything as old in that
// shard, while the other shards go on accepting.
func TestNonceCacheShardedReplays(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	const maxAge = time.Minute
	c := newNonceCache(8, 4, t0) // two nonces a shard
	keys := shardedKeys(c, 4)
	for _, ks := range keys {
		expectUse(t, c, "k", ks[0], t0.Unix(), t0, maxAge, "")
	}
	for _, ks := range keys {
		expectUse(t, c, "k", ks[0], t0.Unix(), t0, maxAge, CodeReplay)
		expectUse(t, c, "k", ks[0], t0.Unix()+1, t0.Add(time.Second), maxAge, CodeReplay) // same nonce, new created
	}

	// Shard 0 fills up and sheds ks[0]; the others still have room.
	now := t0.Add(10 * time.Second)
	expectUse(t, c, "k", keys[0][1], t0.Unix()+5, now, maxAge, "")
	expectUse(t, c, "k", keys[0][2], t0.Unix()+6, now, maxAge, "")
	expectUse(t, c, "k", keys[0][0], t0.Unix(), now, maxAge, CodeReplayCacheFull)
	if n := len(c.shards[0].seen); n != 2 {
		t.Errorf("shard 0 holds %d nonces, want its capacity 2", n)
	}
	for _, ks := range keys[1:] {
		expectUse(t, c, "k", ks[0], t0.Unix(), now, maxAge, CodeReplay) // kept: their shards did not shed
		expectUse(t, c, "k", ks[1], t0.Unix(), now, maxAge, "")         // as old as the shed nonce, other shard
	}

	// Everything expires; each shard drops what it holds when next used,
	// and a dropped nonce stays refused when the clock jumps back (shard 0
	// says so for having shed it, first).
	later := t0.Add(2 * time.Minute)
	for _, ks := range keys {
		expectUse(t, c, "k", ks[3], later.Unix(), later, maxAge, "")
	}
	if n := c.Len(); n != len(keys) {
		t.Errorf("%d nonces held after expiry, want the %d fresh ones", n, len(keys))
	}
	back := t0.Add(30 * time.Second)
	expectUse(t, c, "k", keys[0][0], t0.Unix(), back, maxAge, CodeReplayCacheFull)
	for _, ks := range keys[1:] {
		expectUse(t, c, "k", ks[0], t0.Unix(), back, maxAge, CodeExpired)
		expectUse(t, c, "k", ks[1], t0.Unix(), back, maxAge, CodeExpired)
	}
}

// TestNonceCacheConcurrentReplays: many goroutines at once use the same
// nonce, in a cache of one shard and of many; exactly one gets it.
func TestNonceCacheConcurrentReplays(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	for _, shards := range []int{1, maxNonceShards} {
		c := newNonceCache(DefaultMaxNonces, shards, t0)
		for round := range 20 {
			k := makeNonceKey("k", fmt.Sprint("race", round))
			const n = 64
			var wg sync.WaitGroup
			var won, replays atomic.Int32
			start := make(chan struct{})
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					switch err := c.use(k, t0.Unix(), t0, time.Minute); {
					case err == nil:
						won.Add(1)
					case err.Code == CodeReplay:
						replays.Add(1)
					default:
						t.Errorf("use: %v", err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if won.Load() != 1 || replays.Load() != n-1 {
				t.Fatalf("%d shards, round %d: %d uses got the nonce and %d were replays, want 1 and %d", shards, round, won.Load(), replays.Load(), n-1)
			}
		}
	}
}
