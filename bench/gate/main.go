package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/crypto/bcrypt"

	_ "github.com/clawguard/clawguard/caddymodule"
	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/internal/testport"
)

// variant is one site of the benchmark: its gate options (empty for bare
// reverse_proxy) and the Authorization header clients send, or the keyid
// clients sign every request with.
type variant struct {
	name     string
	gate     string
	auth     string
	signKey  string
	baseline *variant // the ratio is against this; default the first variant
	port     int
	raw      []byte // -wrk: the request as sent, when it is the same every time
	stats    stats
}

type stats struct {
	requests  int64
	errors    int64
	elapsed   time.Duration
	cpu       time.Duration // process user+system time while loading
	alloc     uint64        // bytes the process allocated while loading
	gcs       uint32        // GC cycles while loading
	latencies []time.Duration
	roundRPS  []float64 // requests/s of each round, in round order
}

const (
	token    = "bench-token-0123456789abcdefghijklmn"
	password = "bench password, long enough"
	hmacKey  = "bench-hmac-key-0123456789abcdefghijklmn"
)

func main() {
	duration := flag.Duration("duration", 30*time.Second, "total load time per variant, split over the rounds")
	conns := flag.Int("conns", 16, "concurrent keep-alive connections (with -wrk: 32)")
	wrk := flag.Bool("wrk", false, "wrk-like load (see loadRaw): raw keep-alive HTTP/1.1 connections writing prepared requests, 32 of them unless -conns is given")
	rounds := flag.Int("rounds", 5, "rounds; each round runs every variant once")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (load generator, Caddy, upstream) to `FILE`")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/gate:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *wrk && !flagSet("conns") {
		*conns = 32
	}
	if err := run(*duration, *conns, *rounds, *wrk); err != nil {
		fmt.Fprintln(os.Stderr, "bench/gate:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func run(duration time.Duration, conns, rounds int, wrk bool) error {
	up, err := startUpstream()
	if err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	stateDir, err := os.MkdirTemp("", "bench-gate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("bench:"+password))
	variants := []*variant{
		{name: "bare reverse_proxy", auth: "Bearer " + token},
		{name: "gate: token", gate: "token " + token, auth: "Bearer " + token},
		{name: "gate: bcrypt password (cached)", gate: "password bench " + string(hash), auth: basic},
	}
	signedBare := &variant{name: "bare reverse_proxy, signed reqs", signKey: "bench"}
	variants = append(variants, signedBare,
		&variant{name: "gate: hmac (signed GET)", gate: "hmac bench " + hmacKey, signKey: "bench", baseline: signedBare})
	if err := startCaddy(variants, up, stateDir); err != nil {
		return err
	}
	defer caddy.Stop()

	client := "Go http.Client"
	if wrk {
		client = "wrk-like raw HTTP/1.1"
		for _, v := range variants {
			if v.signKey == "" {
				v.raw = rawRequest(v.port, http.Header{"Authorization": {v.auth}})
			}
		}
	}
	fmt.Printf("bench/gate: %d variants, %d keep-alive connections (%s), %d rounds of %s each, upstream %s, load average %s\n",
		len(variants), conns, client, rounds, duration/time.Duration(rounds), up, loadAverage())
	for r := 0; r < rounds; r++ {
		// A new order every round, so no variant always follows the same
		// one (and inherits its garbage or its cooled caches).
		for _, i := range rand.Perm(len(variants)) {
			v := variants[i]
			runtime.GC() // each run starts with a clean heap, not the previous run's garbage
			load := load
			if wrk {
				load = loadRaw
			}
			if err := load(v, conns, duration/time.Duration(rounds)); err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
		}
	}
	report(variants)
	fmt.Printf("load average at the end: %s\n", loadAverage())
	return nil
}

func startUpstream() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})}
	go srv.Serve(l)
	return l.Addr().String(), nil
}

func startCaddy(variants []*variant, upstream, stateDir string) error {
	admin, _, err := testport.Reserve()
	if err != nil {
		return err
	}
	cfg := testcaddy.Global(admin)
	for _, v := range variants {
		if v.port, _, err = testport.Reserve(); err != nil {
			return err
		}
		gate := ""
		if v.gate != "" {
			// local_trust off: every request is judged by its credential,
			// as a remote client's would be.
			gate = fmt.Sprintf("\tclawguard {\n\t\t%s\n\t\tlocal_trust off\n\t\tstate_dir %s\n\t}\n", v.gate, stateDir)
		}
		cfg += fmt.Sprintf("\nhttp://:%d {\n\tbind 127.0.0.1\n%s\treverse_proxy %s\n}\n", v.port, gate, upstream)
	}
	return testcaddy.LoadErr(cfg)
}

func load(v *variant, conns int, d time.Duration) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", v.port)
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	// Warm up (connections, and the password cache's one bcrypt).
	if err := fetch(context.Background(), client, url, v); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var requests, failures atomic.Int64
	heap0 := readHeap()
	cpu0 := cpuTime()
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				t0 := time.Now()
				err := fetch(ctx, client, url, v)
				if ctx.Err() != nil {
					break
				}
				if err != nil {
					failures.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
				requests.Add(1)
			}
			mu.Lock()
			v.stats.latencies = append(v.stats.latencies, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	v.stats.record(time.Since(start), requests.Load(), failures.Load(), cpu0, heap0)
	return nil
}

func fetch(ctx context.Context, client *http.Client, url string, v *variant) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if v.signKey != "" {
		if err := httpsig.Sign(req, v.signKey, []byte(hmacKey)); err != nil {
			return err
		}
	} else {
		req.Header.Set("Authorization", v.auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// rawRequest is a GET / to the variant's site as wrk would send it.
func rawRequest(port int, h http.Header) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: bench/gate\r\n", port)
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// signedRawRequest is a GET / signed afresh, as rawRequest writes it.
func signedRawRequest(v *variant) ([]byte, error) {
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", v.port), nil)
	if err := httpsig.Sign(req, v.signKey, []byte(hmacKey)); err != nil {
		return nil, err
	}
	return rawRequest(v.port, req.Header), nil
}

// loadRaw is load with wrk-like clients (-wrk): each connection is a
// goroutine that writes a prepared HTTP/1.1 request, reads the whole
// response with a minimal parser and goes again on the same connection, so
// the generator's own cost per request is small next to Caddy's. (Go's
// http.Client costs about as much as the proxy it measures, which makes
// the gate's share of a request look smaller than it is.) Signed variants
// sign every request afresh, as with load.
func loadRaw(v *variant, conns int, d time.Duration) error {
	addr := fmt.Sprintf("127.0.0.1:%d", v.port)
	// Warm up (the password cache's one bcrypt) and check the answer.
	if err := fetch(context.Background(), http.DefaultClient, "http://"+addr+"/", v); err != nil {
		return err
	}
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		cs[i] = c
	}
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var requests, failures atomic.Int64
	var firstErr atomic.Value
	heap0 := readHeap()
	cpu0 := cpuTime()
	start := time.Now()
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(deadline.Add(5 * time.Second))
			br := bufio.NewReaderSize(c, 4096)
			lat := make([]time.Duration, 0, 1<<14)
			defer func() {
				mu.Lock()
				v.stats.latencies = append(v.stats.latencies, lat...)
				mu.Unlock()
			}()
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				req := v.raw
				if req == nil {
					var err error
					if req, err = signedRawRequest(v); err != nil {
						firstErr.CompareAndSwap(nil, err)
						failures.Add(1)
						return
					}
				}
				if _, err := c.Write(req); err != nil {
					firstErr.CompareAndSwap(nil, err)
					failures.Add(1)
					return
				}
				status, err := readResponse(br)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					failures.Add(1)
					return // the connection's state is unknown
				}
				if status != http.StatusOK {
					failures.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
				requests.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil && requests.Load() == 0 {
		return err
	}
	v.stats.record(elapsed, requests.Load(), failures.Load(), cpu0, heap0)
	return nil
}

// readResponse reads one HTTP/1.1 response, its body by Content-Length or
// chunked, and returns its status code.
func readResponse(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status := int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	length, chunked := -1, false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		k, val, _ := bytes.Cut(line, []byte(":"))
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(val)); err != nil {
				return 0, err
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(val, []byte("chunked"))
		}
	}
	switch {
	case chunked:
		_, err = io.Copy(io.Discard, httputil.NewChunkedReader(br))
		if err == nil {
			_, err = br.Discard(2) // the final CRLF
		}
	case length >= 0:
		_, err = br.Discard(length)
	default:
		err = errors.New("response without a length")
	}
	return status, err
}

func report(variants []*variant) {
	fmt.Printf("\n%-32s %9s %9s %9s %7s %7s %9s %10s %9s %9s %7s  %s\n", "variant", "req/s", "p50", "p99", "errors", "ratio", "median/rd", "CPU/req", "CPU ratio", "alloc/req", "GC/10k", "ratios of")
	fmt.Println(strings.Repeat("-", 158))
	for _, v := range variants {
		slices.Sort(v.stats.latencies)
		base := v.baseline
		if base == nil {
			base = variants[0]
		}
		perReq := float64(max(v.stats.requests, 1))
		fmt.Printf("%-32s %9.0f %9s %9s %7d %6.1f%% %8.1f%% %10s %8.1f%% %8.0fB %7.1f  %s\n", v.name, v.stats.rps(),
			percentile(v.stats.latencies, 0.50), percentile(v.stats.latencies, 0.99), v.stats.errors,
			100*v.stats.rps()/base.stats.rps(), 100*medianRoundRatio(v, base), v.stats.cpuPerRequest().Round(100*time.Nanosecond),
			100*float64(base.stats.cpuPerRequest())/float64(v.stats.cpuPerRequest()),
			float64(v.stats.alloc)/perReq, 1e4*float64(v.stats.gcs)/perReq, base.name)
	}
	fmt.Printf("\nper-round throughput ratios (gate ÷ its bare reverse_proxy in the same round, %d rounds):\n", len(variants[0].stats.roundRPS))
	fmt.Printf("%-32s %7s %15s %15s  %s\n", "variant", "median", "min–max", "IQR", "of")
	for _, v := range variants {
		if v.gate == "" {
			continue
		}
		base := v.baseline
		if base == nil {
			base = variants[0]
		}
		r := roundRatios(v, base)
		if len(r) == 0 {
			continue
		}
		fmt.Printf("%-32s %7.3f %7.3f–%-7.3f %7.3f–%-7.3f  %s\n", v.name, quantile(r, 0.5), r[0], r[len(r)-1],
			quantile(r, 0.25), quantile(r, 0.75), base.name)
	}
}

// roundRatios are v's requests/s over base's, round by round, sorted.
func roundRatios(v, base *variant) []float64 {
	var r []float64
	for i := range min(len(v.stats.roundRPS), len(base.stats.roundRPS)) {
		r = append(r, v.stats.roundRPS[i]/base.stats.roundRPS[i])
	}
	slices.Sort(r)
	return r
}

// quantile of sorted r, interpolating between neighbours (q 0.5 of an even
// count is the mean of the middle two).
func quantile(r []float64, q float64) float64 {
	pos := q * float64(len(r)-1)
	i := int(pos)
	if i+1 >= len(r) {
		return r[len(r)-1]
	}
	return r[i] + (pos-float64(i))*(r[i+1]-r[i])
}

// loadAverage is the 1, 5 and 15 minute load average from /proc/loadavg,
// or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// medianRoundRatio is the median over rounds of v's requests/s over base's
// in the same round: a round's drift hits both, and one disturbed round
// does not move the median.
func medianRoundRatio(v, base *variant) float64 {
	r := roundRatios(v, base)
	if len(r) == 0 {
		return 0
	}
	return quantile(r, 0.5)
}

// record adds one run to s; cpu0 and heap0 are the counters when it began.
// The heap is read after the CPU time, so the stop-the-world of reading it
// is not counted.
func (s *stats) record(elapsed time.Duration, requests, failures int64, cpu0 time.Duration, heap0 heapCounts) {
	s.elapsed += elapsed
	s.roundRPS = append(s.roundRPS, float64(requests)/elapsed.Seconds())
	s.cpu += cpuTime() - cpu0
	h := readHeap()
	s.alloc += h.alloc - heap0.alloc
	s.gcs += h.gcs - heap0.gcs
	s.requests += requests
	s.errors += failures
}

// heapCounts are the runtime's cumulative bytes allocated and GC cycles.
type heapCounts struct {
	alloc uint64
	gcs   uint32
}

func readHeap() heapCounts {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heapCounts{alloc: m.TotalAlloc, gcs: m.NumGC}
}

func (s *stats) rps() float64 { return float64(s.requests) / s.elapsed.Seconds() }

func (s *stats) cpuPerRequest() time.Duration { return s.cpu / time.Duration(max(s.requests, 1)) }

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*p)].Round(time.Microsecond)
}
