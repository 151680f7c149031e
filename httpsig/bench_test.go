//go:build unix

package httpsig

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time. On a shared machine it is a
// steadier measure than wall time: other processes' load does not count.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRequests signs n requests (each with its own nonce) as a client and
// returns them as the server receives them.
func benchRequests(b *testing.B, n int, method, target string, body []byte) []*http.Request {
	b.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		out, err := http.NewRequest(method, target, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if len(body) == 0 {
			out.Body, out.GetBody, out.ContentLength = http.NoBody, nil, 0
		}
		if err := Sign(out, "client", testKey); err != nil {
			b.Fatal(err)
		}
		in := httptest.NewRequest(method, target, bytes.NewReader(body))
		in.Header = out.Header
		reqs[i] = in
	}
	return reqs
}

func benchVerify(b *testing.B, method string, body []byte) {
	v, err := NewVerifier(Config{
		Keys:   map[string][]byte{"client": testKey},
		Nonces: NewNonceCache(2*b.N+1, time.Now().Add(-time.Minute)), // room to spare: a shard fills before the whole cache
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	// Requests are signed in batches with the timer stopped: each needs its
	// own nonce, and signing them all up front would make the heap (and GC
	// work) grow with b.N.
	for done := 0; done < b.N; {
		b.StopTimer()
		reqs := benchRequests(b, min(1024, b.N-done), method, "http://gateway.example:18789/hooks/deploy?source=ci", body)
		b.StartTimer()
		start := cpuTime(b)
		for _, r := range reqs {
			if _, err := v.Verify(r); err != nil {
				b.Fatal(err)
			}
			if len(body) > 0 {
				io.Copy(io.Discard, r.Body) // what the proxy would do with the verified body
			}
		}
		cpu += cpuTime(b) - start
		done += len(reqs)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "verifications/cpu-s")
}

// BenchmarkVerifyGET: one core verifying small signed GETs (parse, base,
// HMAC, replay cache).
func BenchmarkVerifyGET(b *testing.B) { benchVerify(b, "GET", nil) }

// BenchmarkVerifyPOST64K: one core verifying 64 KiB signed POSTs (adds
// reading the body and its sha-256 Content-Digest).
func BenchmarkVerifyPOST64K(b *testing.B) {
	benchVerify(b, "POST", bytes.Repeat([]byte("0123456789abcdef"), 4096))
}

// BenchmarkSign: the client side, a small GET.
func BenchmarkSign(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("GET", "http://gateway.example:18789/v1/status", nil)
		if err := Sign(req, "client", testKey); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyGETParallel: small signed GETs verified from every core at
// once through one Verifier and its replay cache, to expose contention
// (run with -mutexprofile, -blockprofile). Each signature is made up front
// (the timer cannot stop per goroutine); each goroutine reuses one request
// and swaps in a fresh pair of signature fields per verification.
func BenchmarkVerifyGETParallel(b *testing.B) {
	const target = "http://gateway.example:18789/hooks/deploy?source=ci"
	v, err := NewVerifier(Config{
		Keys:   map[string][]byte{"client": testKey},
		Nonces: NewNonceCache(2*b.N+1, time.Now().Add(-time.Minute)), // room to spare: a shard fills before the whole cache
	})
	if err != nil {
		b.Fatal(err)
	}
	fields := make([][2][]string, b.N)
	for i := range fields {
		out, _ := http.NewRequest("GET", target, nil)
		if err := Sign(out, "client", testKey); err != nil {
			b.Fatal(err)
		}
		fields[i] = [2][]string{out.Header["Signature-Input"], out.Header["Signature"]}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", target, nil)
		for pb.Next() {
			f := fields[next.Add(1)-1]
			r.Header["Signature-Input"], r.Header["Signature"] = f[0], f[1]
			if _, err := v.Verify(r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
