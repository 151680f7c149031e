package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
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
	stats    stats
}

type stats struct {
	requests  int64
	errors    int64
	elapsed   time.Duration
	cpu       time.Duration // process user+system time while loading
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
	conns := flag.Int("conns", 16, "concurrent keep-alive connections")
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
	if err := run(*duration, *conns, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench/gate:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(duration time.Duration, conns, rounds int) error {
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

	fmt.Printf("bench/gate: %d variants, %d connections, %d rounds of %s each, upstream %s\n",
		len(variants), conns, rounds, duration/time.Duration(rounds), up)
	for r := 0; r < rounds; r++ {
		// A new order every round, so no variant always follows the same
		// one (and inherits its garbage or its cooled caches).
		for _, i := range rand.Perm(len(variants)) {
			v := variants[i]
			runtime.GC() // each run starts with a clean heap, not the previous run's garbage
			if err := load(v, conns, duration/time.Duration(rounds)); err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
		}
	}
	report(variants)
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
	elapsed := time.Since(start)
	v.stats.elapsed += elapsed
	v.stats.roundRPS = append(v.stats.roundRPS, float64(requests.Load())/elapsed.Seconds())
	v.stats.cpu += cpuTime() - cpu0
	v.stats.requests += requests.Load()
	v.stats.errors += failures.Load()
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

func report(variants []*variant) {
	fmt.Printf("\n%-32s %9s %9s %9s %7s %7s %9s %10s %9s  %s\n", "variant", "req/s", "p50", "p99", "errors", "ratio", "median/rd", "CPU/req", "CPU ratio", "ratios of")
	fmt.Println(strings.Repeat("-", 140))
	for _, v := range variants {
		slices.Sort(v.stats.latencies)
		base := v.baseline
		if base == nil {
			base = variants[0]
		}
		fmt.Printf("%-32s %9.0f %9s %9s %7d %6.1f%% %8.1f%% %10s %8.1f%%  %s\n", v.name, v.stats.rps(),
			percentile(v.stats.latencies, 0.50), percentile(v.stats.latencies, 0.99), v.stats.errors,
			100*v.stats.rps()/base.stats.rps(), 100*medianRoundRatio(v, base), v.stats.cpuPerRequest().Round(100*time.Nanosecond),
			100*float64(base.stats.cpuPerRequest())/float64(v.stats.cpuPerRequest()), base.name)
	}
}

// medianRoundRatio is the median over rounds of v's requests/s over base's
// in the same round: a round's drift hits both, and one disturbed round
// does not move the median.
func medianRoundRatio(v, base *variant) float64 {
	var r []float64
	for i := range min(len(v.stats.roundRPS), len(base.stats.roundRPS)) {
		r = append(r, v.stats.roundRPS[i]/base.stats.roundRPS[i])
	}
	if len(r) == 0 {
		return 0
	}
	slices.Sort(r)
	if n := len(r); n%2 == 0 {
		return (r[n/2-1] + r[n/2]) / 2
	}
	return r[len(r)/2]
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
