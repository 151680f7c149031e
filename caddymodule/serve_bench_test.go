package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/internal/testcaddy"
)

// The gate's own cost per request: ServeHTTP with a no-op next handler, for
// each method, on a request prepared as Caddy's server prepares it. A
// report (go test -bench ServeHTTP ./caddymodule), not a timed test. Besides
// wall time and allocations it reports cpu-ns/op, the benchmark thread's
// CPU time per request (Linux), which a busy machine disturbs less.

type nopHandler struct{}

func (nopHandler) ServeHTTP(http.ResponseWriter, *http.Request) error { return nil }

// benchGate provisions a gate from Caddyfile lines against the running
// config's clawguard app (Caddy is loaded for that).
func benchGate(b testing.TB, lines string) *Gate {
	b.Helper()
	testcaddy.Load(b, testcaddy.Global(testcaddy.FreePort(b))+fmt.Sprintf("http://:%d {\n\tbind 127.0.0.1\n\trespond 204\n}\n", testcaddy.FreePort(b)))
	g := new(Gate)
	d := caddyfile.NewTestDispenser("clawguard {\n" + lines + "\nadmin_listen off\nstate_dir " + b.TempDir() + "\n}")
	if err := g.UnmarshalCaddyfile(d); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.ActiveContext())
	b.Cleanup(cancel)
	if err := g.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Cleanup() })
	return g
}

// benchRequest is a request as Caddy's server hands it to handlers, with
// a reset that puts back the headers the gate changes without allocating,
// so that only the gate's own allocations are counted.
type benchRequest struct {
	r     *http.Request
	w     http.ResponseWriter
	saved http.Header
}

func newBenchRequest(remote string, headers map[string]string) *benchRequest {
	r := httptest.NewRequest("GET", "http://127.0.0.1:18789/api/chat", nil)
	r.RemoteAddr = remote
	r.Header.Set("User-Agent", "bench/1")
	r.Header.Set("Accept", "*/*")
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	return &benchRequest{r: prepare(r, w), w: w, saved: r.Header.Clone()}
}

// prepare does to r what Caddy's server does before the first handler,
// client_ip included (PrepareRequest without a server leaves it empty; a
// server sets the peer's host, or the client a trusted proxy names).
func prepare(r *http.Request, w http.ResponseWriter) *http.Request {
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	caddyhttp.SetVar(r.Context(), caddyhttp.ClientIPVarKey, host)
	return r
}

func (br *benchRequest) reset() {
	for k := range br.r.Header {
		if _, ok := br.saved[k]; !ok {
			delete(br.r.Header, k)
		}
	}
	for k, v := range br.saved {
		br.r.Header[k] = v
	}
}

func runServeBench(b *testing.B, g *Gate, br *benchRequest, want string) {
	b.Helper()
	if err := g.ServeHTTP(br.w, br.r, nopHandler{}); err != nil {
		b.Fatal(err)
	}
	if got := br.r.Header.Get("X-Clawguard-Identity"); !strings.HasPrefix(got, want) {
		b.Fatalf("identity %q, want %s…", got, want)
	}
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	for b.Loop() {
		br.reset()
		g.ServeHTTP(br.w, br.r, nopHandler{})
	}
	reportCPU(b, threadCPU()-cpu0)
}

// reportCPU reports the benchmark thread's CPU time per request as
// cpu-ns/op (see threadCPU).
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func BenchmarkServeHTTP(b *testing.B) {
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), 5)
	g := benchGate(b, "token "+testToken+"\npassword alice "+string(hash)+"\nhmac ci "+hmacKey)
	b.Run("token", func(b *testing.B) {
		runServeBench(b, g, newBenchRequest("192.0.2.10:40000", map[string]string{"Authorization": "Bearer " + testToken}), "token:")
	})
	b.Run("password-cached", func(b *testing.B) {
		runServeBench(b, g, newBenchRequest("192.0.2.11:40000", map[string]string{"Authorization": basic("alice", testPassword)}), "user:alice")
	})
	b.Run("local", func(b *testing.B) {
		runServeBench(b, g, newBenchRequest("127.0.0.1:40000", nil), "local")
	})
	b.Run("hmac", func(b *testing.B) {
		// A fresh signature per request (a replayed one is refused). The
		// requests are signed and prepared in batches with the timer (and
		// the allocation count) stopped, so only ServeHTTP is measured.
		const batch = 1024
		reqs := make([]*http.Request, 0, batch)
		w := httptest.NewRecorder()
		signBatch := func() {
			reqs = reqs[:0]
			for range batch {
				r := httptest.NewRequest("GET", "http://127.0.0.1:18789/api/chat", nil)
				r.RemoteAddr = "192.0.2.12:40000"
				r.Header.Set("User-Agent", "bench/1")
				r.Header.Set("Accept", "*/*")
				if err := httpsig.Sign(r, "ci", []byte(hmacKey)); err != nil {
					b.Fatal(err)
				}
				reqs = append(reqs, prepare(r, w))
			}
		}
		signBatch()
		if err := g.ServeHTTP(w, reqs[0], nopHandler{}); err != nil {
			b.Fatal(err)
		}
		if got := reqs[0].Header.Get("X-Clawguard-Identity"); got != "hmac:ci" {
			b.Fatalf("identity %q, want hmac:ci", got)
		}
		next := 1
		b.ReportAllocs()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var cpu time.Duration
		cpu0 := threadCPU()
		for b.Loop() {
			if next == batch {
				cpu += threadCPU() - cpu0
				b.StopTimer()
				signBatch()
				next = 0
				b.StartTimer()
				cpu0 = threadCPU()
			}
			g.ServeHTTP(w, reqs[next], nopHandler{})
			next++
		}
		reportCPU(b, cpu+threadCPU()-cpu0)
	})
}
