package httpsig

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

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
		Nonces: NewNonceCache(b.N+1, time.Now().Add(-time.Minute)),
	})
	if err != nil {
		b.Fatal(err)
	}
	reqs := benchRequests(b, b.N, method, "http://gateway.example:18789/hooks/deploy?source=ci", body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for _, r := range reqs {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
		if len(body) > 0 {
			io.Copy(io.Discard, r.Body) // what the proxy would do with the verified body
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
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
