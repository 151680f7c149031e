package approvals

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// benchPolicy has 10,000 allow entries for one agent: 8,000 exact paths
// (half with an args pattern), 1,000 globs with "*" and 1,000 with "**",
// plus 500 entries for "*". The entries the benchmark hits come last.
func benchPolicy(tb testing.TB) *Policy {
	cfg := &Config{Version: 1, Defaults: Defaults{Mode: ModeAllowlist}, Agents: map[string]*Agent{}}
	main := &Agent{}
	for i := range 8000 {
		e := Entry{Path: fmt.Sprintf("/opt/app%d/bin/tool%d", i%400, i)}
		if i%2 == 0 {
			e.Args = fmt.Sprintf(`^(--check|--verbose|-n [0-9]+)( (--check|--verbose|-n [0-9]+))* /data/set%d/[a-z0-9_.-]+$`, i)
		}
		main.Allow = append(main.Allow, e)
	}
	for i := range 1000 {
		main.Allow = append(main.Allow, Entry{Path: fmt.Sprintf("/usr/bin/glob%d-*", i), Args: `^--safe( [a-z]+)*$`})
	}
	for i := range 999 {
		main.Allow = append(main.Allow, Entry{Path: fmt.Sprintf("/srv/tree%d/**/bin/run-*", i)})
	}
	main.Allow = append(main.Allow, Entry{Path: "/usr/bin/git", Args: `^(status|log|diff)( --[a-z-]+)*( [a-zA-Z0-9_./-]+)*$`})
	cfg.Agents["main"] = main
	star := &Agent{}
	for i := range 500 {
		star.Allow = append(star.Allow, Entry{Path: fmt.Sprintf("/usr/local/bin/shared%d", i)})
	}
	cfg.Agents["*"] = star
	p, err := NewPolicy(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkDecision10k measures one decision against 10,000 entries,
// including PATH lookup and symlink resolution on a real (temporary)
// filesystem, and reports p50/p99 latency. Run:
//
//	go test ./approvals/ -run '^$' -bench Decision10k -benchtime 200000x
func BenchmarkDecision10k(b *testing.B) {
	root := testRoot(b)
	p := benchPolicy(b)
	cases := map[string]struct {
		argv []string
		want Verdict
	}{
		"hit":     {[]string{"git", "log", "--oneline", "--no-merges", "src/main.go"}, Allow},
		"miss":    {[]string{"cat", "/etc/passwd"}, Deny},
		"wrapped": {[]string{"env", "LANG=C", "timeout", "5", "git", "status"}, Allow},
		// The host's own /usr/bin/env, resolved on the real filesystem.
		"host": {[]string{"env", "--version"}, Deny},
	}
	for name, c := range cases {
		b.Run(name, func(b *testing.B) {
			req := Request{Agent: "main", Argv: c.argv, Cwd: "/work", Path: "/usr/local/bin:/usr/bin",
				Resolver: RootResolver{Root: root}}
			if name == "host" {
				req.Resolver, req.Cwd, req.Path = HostResolver(), "/", "/usr/bin:/bin"
			}
			if d := p.Evaluate(req); d.Verdict != c.want {
				b.Fatalf("%s: %+v", name, d)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				p.Evaluate(req)
				lat = append(lat, time.Since(t0))
			}
			reportPercentiles(b, lat)
		})
	}
	// The floor under "host": the three lstat calls it makes to resolve
	// env, with nothing else. On a VM their tail sets the decision's p99.
	b.Run("host-lstat-only", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			for _, p := range []string{"/usr", "/usr/bin", "/usr/bin/env"} {
				if _, err := os.Lstat(p); err != nil {
					b.Fatal(err)
				}
			}
			lat = append(lat, time.Since(t0))
		}
		reportPercentiles(b, lat)
	})
}

// BenchmarkMatch10k measures the matching step alone (no filesystem).
func BenchmarkMatch10k(b *testing.B) {
	p := benchPolicy(b)
	ap := p.agent("main")
	cmd := &command{path: "/usr/bin/git", args: []string{"log", "--oneline", "src/main.go"}}
	joined := JoinArgs(cmd.args)
	d := &Decision{}
	check := func(r *rule) bool { return d.check(r, cmd, joined) == matched }
	if r, _ := ap.rules.find(cmd.path, check); r == nil {
		b.Fatal("no match")
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		ap.rules.find(cmd.path, check)
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
