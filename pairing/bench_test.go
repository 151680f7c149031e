package pairing

import (
	"fmt"
	"sync"
	"testing"
)

// BenchmarkAuthenticate is the request path of a device token: one SHA-256
// and a map lookup in the current snapshot, no system call.
func BenchmarkAuthenticate(b *testing.B) {
	s := openStore(b, b.TempDir(), Options{})
	tokens := make([]string, 1000)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() {
			t, err := s.submit(newRequest(b, fmt.Sprint(i)), true, "auto:local", testLimits)
			if err != nil {
				b.Error(err)
			}
			tokens[i] = t
		})
	}
	wg.Wait()
	tok := tokens[500]
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := s.Authenticate(tok); !ok {
				b.Fatal("refused")
			}
		}
	})
}

// BenchmarkWatchStat is what the watch loop pays every WatchInterval (250ms
// by default) to notice other processes' writes: one stat.
func BenchmarkWatchStat(b *testing.B) {
	s := openStore(b, b.TempDir(), Options{})
	if _, err := s.submit(newRequest(b, "c"), true, "auto:local", testLimits); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.statPath(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitParallel measures pairing writes (auto-approvals) from many
// goroutines: concurrent writes share one fsync'd file replacement.
func BenchmarkSubmitParallel(b *testing.B) {
	s := openStore(b, b.TempDir(), Options{})
	b.SetParallelism(25) // 50 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.submit(newRequest(b, "c"), true, "auto:local", testLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
}
