package pairing

import (
	"crypto/rand"
	"net/http"
	"sync"
	"time"
)

// Defaults of the challenge nonces.
const (
	// DefaultNonceTTL is how long a challenge nonce may be used.
	DefaultNonceTTL = 60 * time.Second
	// defaultMaxNonces bounds the outstanding nonces (about 150 bytes each).
	defaultMaxNonces = 16384
	// defaultNoncesPerClient bounds one client's outstanding nonces, so one
	// client cannot take the whole capacity.
	defaultNoncesPerClient = 64
)

// nonces holds the challenge nonces handed out and not yet used. Memory is
// bounded: past the capacity (overall or per client) expired entries are
// dropped first and then challenges are refused, never silently forgotten,
// so a nonce cannot be used twice.
type nonces struct {
	mu        sync.Mutex
	ttl       time.Duration
	max       int
	perClient int
	m         map[string]nonceEntry
	count     map[string]int // outstanding nonces per client
}

type nonceEntry struct {
	expires time.Time
	client  string
}

func newNonces(ttl time.Duration, max, perClient int) *nonces {
	return &nonces{ttl: ttl, max: max, perClient: perClient, m: map[string]nonceEntry{}, count: map[string]int{}}
}

// issue makes a nonce for client.
func (n *nonces) issue(client string, now time.Time) (Challenge, error) {
	var b [nonceBytes]byte
	rand.Read(b[:])
	nonce := b64.EncodeToString(b[:])
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.m) >= n.max || n.count[client] >= n.perClient {
		n.sweepLocked(now)
	}
	if len(n.m) >= n.max || n.count[client] >= n.perClient {
		return Challenge{}, &Error{Status: http.StatusTooManyRequests, Code: CodeTooMany,
			Msg: "too many outstanding challenges; use or let expire the ones you have"}
	}
	e := nonceEntry{expires: now.Add(n.ttl), client: client}
	n.m[nonce] = e
	n.count[client]++
	return Challenge{Nonce: nonce, ExpiresAt: e.expires.UTC()}, nil
}

// valid reports whether nonce is outstanding and unexpired, without using it.
func (n *nonces) valid(nonce string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.m[nonce]
	return ok && now.Before(e.expires)
}

// use consumes nonce; it reports false when it was unknown, used or expired.
func (n *nonces) use(nonce string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.m[nonce]
	if !ok {
		return false
	}
	n.removeLocked(nonce, e)
	return now.Before(e.expires)
}

func (n *nonces) removeLocked(nonce string, e nonceEntry) {
	delete(n.m, nonce)
	if n.count[e.client]--; n.count[e.client] <= 0 {
		delete(n.count, e.client)
	}
}

// sweep drops expired nonces.
func (n *nonces) sweep(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sweepLocked(now)
}

func (n *nonces) sweepLocked(now time.Time) {
	for k, e := range n.m {
		if !now.Before(e.expires) {
			n.removeLocked(k, e)
		}
	}
}

func (n *nonces) len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.m)
}
