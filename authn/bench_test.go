package authn

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func BenchmarkPasswordVerifyCached(b *testing.B) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("bench password"), bcrypt.MinCost)
	s := NewPasswordSet()
	s.Add("bench", string(hash))
	s.Verify("bench", "bench password")
	b.ReportAllocs()
	for b.Loop() {
		if !s.Verify("bench", "bench password") {
			b.Fatal("refused")
		}
	}
}

func BenchmarkTokenMatch(b *testing.B) {
	var s TokenSet
	s.Add("a", "bench-token-0123456789abcdefghijklmn")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Match("bench-token-0123456789abcdefghijklmn"); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkLimiterLockedMiss(b *testing.B) {
	l := NewLimiter(DefaultRateLimit)
	now := time.Now()
	key := Key("127.0.0.1:18789", ClassDirect, netip.MustParseAddr("192.0.2.1"))
	b.ReportAllocs()
	for b.Loop() {
		l.Locked(key, now)
	}
}

func BenchmarkIsLocal(b *testing.B) {
	p, _ := NewLocalPolicy(nil)
	r := httptest.NewRequest("GET", "http://127.0.0.1:18789/", nil)
	peer := netip.MustParseAddr("127.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		p.IsLocal(r, peer)
	}
}
