package pairing

import (
	"context"
	"net"
	"testing"
	"time"
)

// liveReq is a tracked request with a hijacked connection: the test holds
// the peer's end and sees the close there.
type liveReq struct {
	live *Live
	ctx  context.Context
	peer net.Conn
}

func track(t *testing.T, s *Store, token string) liveReq {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ours, peer := net.Pipe()
	t.Cleanup(func() { ours.Close(); peer.Close() })
	l := s.Track(token, cancel)
	l.Hijacked(ours)
	return liveReq{live: l, ctx: ctx, peer: peer}
}

// ended reports whether the request's context is cancelled and its
// connection closed.
func (r liveReq) ended() bool {
	r.peer.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := r.peer.Read(make([]byte, 1))
	return r.ctx.Err() != nil && err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestLiveRequestsEndWithTheirToken(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	pair := func(r Request) string {
		tok, err := s.submit(r, true, "auto:local", testLimits)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	victim, bystander := newRequest(t, "a"), newRequest(t, "b")
	victimTok, bystanderTok := pair(victim), pair(bystander)
	v1, v2, b := track(t, s, victimTok), track(t, s, victimTok), track(t, s, bystanderTok)
	if v1.ended() || b.ended() {
		t.Fatal("a request with a valid token was ended")
	}

	if _, err := s.Revoke(victim.DeviceID, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, func() bool { return v1.ended() && v2.ended() })
	if b.ended() {
		t.Fatal("revoking one device ended another's request")
	}

	// Tracked after the revocation (checked before it, admitted after): ended
	// at once, and so is a connection it hijacks later.
	late := track(t, s, victimTok)
	if !late.ended() {
		t.Fatal("a request with a revoked token was not ended by Track")
	}

	// Pairing again replaces the token: requests with the old one end.
	again := bystander
	again.ID = newRequestID()
	newTok := pair(again)
	waitFor(t, time.Second, func() bool { return b.ended() })
	fresh := track(t, s, newTok)
	if fresh.ended() {
		t.Fatal("a request with the new token was ended")
	}

	// Done unregisters: nothing of the finished requests is kept.
	for _, r := range []liveReq{v1, v2, b, late, fresh} {
		r.live.Done()
	}
	s.live.mu.Lock()
	n := len(s.live.byToken)
	s.live.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d tokens still tracked after every request finished", n)
	}
}

// BenchmarkTrack is the per-request cost of tracking a device's request.
func BenchmarkTrack(b *testing.B) {
	s := openStore(b, b.TempDir(), Options{})
	tok, err := s.submit(newRequest(b, "c"), true, "auto:local", testLimits)
	if err != nil {
		b.Fatal(err)
	}
	cancel := func() {}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Track(tok, cancel).Done()
		}
	})
}
