package pairing

import (
	"context"
	"net"
	"sync"
)

// Live is one request of a paired device in progress, registered with
// Store.Track. The store ends it — cancels its context and closes the
// connections it took over — as soon as the token it was authenticated with
// stops being valid: the device is revoked or paired again (new token), in
// this process or another, or the store file becomes unreadable (token
// checks then fail closed too).
type Live struct {
	store  *Store
	hash   string // of the token the request was authenticated with
	cancel context.CancelFunc

	mu    sync.Mutex // guards conns and ended
	conns []net.Conn
	ended bool
}

// liveSet holds the live requests of a store by token hash.
type liveSet struct {
	mu      sync.Mutex
	byToken map[string]map[*Live]struct{}
}

// Track registers a request authenticated with token; cancel cancels the
// request's context. It is ended at once if the token is no longer valid
// (revoked since it was checked). The caller must call Done when the
// request ends.
func (s *Store) Track(token string, cancel context.CancelFunc) *Live {
	l := &Live{store: s, hash: hashToken(token), cancel: cancel}
	s.live.mu.Lock()
	set := s.live.byToken[l.hash]
	if set == nil {
		set = map[*Live]struct{}{}
		s.live.byToken[l.hash] = set
	}
	set[l] = struct{}{}
	s.live.mu.Unlock()
	// Registered first, checked second: a change published after this check
	// finds l registered when endInvalid runs for it.
	if !s.snap.Load().valid(l.hash) {
		l.end()
	}
	return l
}

// Hijacked records a connection the request took over from the HTTP server
// (a WebSocket), to be closed when the request is ended; if it already was,
// c is closed at once.
func (l *Live) Hijacked(c net.Conn) {
	l.mu.Lock()
	ended := l.ended
	if !ended {
		l.conns = append(l.conns, c)
	}
	l.mu.Unlock()
	if ended {
		c.Close()
	}
}

// Done unregisters the request and releases its context.
func (l *Live) Done() {
	s := l.store
	s.live.mu.Lock()
	if set := s.live.byToken[l.hash]; set != nil {
		delete(set, l)
		if len(set) == 0 {
			delete(s.live.byToken, l.hash)
		}
	}
	s.live.mu.Unlock()
	l.cancel()
}

// end cancels the request and closes its connections. A TLS connection's
// Close writes a close_notify alert, which can wait up to 5 s for a peer
// that stopped reading, so each is closed on its own goroutine.
func (l *Live) end() {
	l.mu.Lock()
	conns := l.conns
	l.conns, l.ended = nil, true
	l.mu.Unlock()
	l.cancel()
	for _, c := range conns {
		go c.Close()
	}
}

// valid reports whether the token with this hash is accepted in sn.
func (sn *snapshot) valid(hash string) bool {
	_, ok := sn.byToken[hash]
	return ok && sn.err == nil
}

// endInvalid ends the live requests whose token sn no longer accepts.
func (s *Store) endInvalid(sn *snapshot) {
	var ended []*Live
	s.live.mu.Lock()
	for hash, set := range s.live.byToken {
		if sn.valid(hash) {
			continue
		}
		for l := range set {
			ended = append(ended, l)
		}
		delete(s.live.byToken, hash)
	}
	s.live.mu.Unlock()
	for _, l := range ended {
		l.end()
	}
}

// liveLoop ends live requests after every change of the state.
func (s *Store) liveLoop() {
	defer close(s.liveDone)
	for {
		_, changed := s.Changed()
		s.endInvalid(s.snap.Load())
		select {
		case <-changed:
		case <-s.stop:
			return
		}
	}
}
