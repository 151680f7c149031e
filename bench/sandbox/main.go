// Command sandbox benchmarks sandbox exec latency against `docker run --rm
// <image> true` on the same Docker Engine, in the same run:
//
//   - docker run: `docker run --rm <image> true` (the docker CLI)
//   - cold first exec: a new session's first command, container created and
//     started for it (create + start + exec)
//   - warm exec: a command in a session whose container runs
//   - pooled first exec: a new session's first command with a warm pool
//   - API warm exec: the warm exec through the sidecar's HTTP API on its
//     unix socket
//
// The cases take turns in every round, so other load on the machine falls on
// all of them alike. It prints p50/p95 per case and the ratios the issue sets
// targets for (warm p50 <= 1/5 of docker run; pooled first exec <= 1.5x warm
// exec).
//
//	go run ./bench/sandbox [-n 30] [-json]
//
// It builds the busybox test image if needed and removes every container it
// created.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
	"github.com/clawguard/clawguard/sidecar"
)

type stats struct {
	Case  string  `json:"case"`
	N     int     `json:"n"`
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	Mean  float64 `json:"mean_ms"`
}

func summarize(name string, ds []time.Duration) stats {
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	pct := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return stats{name, len(ds), ms(pct(0.50)), ms(pct(0.95)), ms(sum / time.Duration(len(ds)))}
}

func main() {
	n := flag.Int("n", 30, "iterations per case")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()
	if err := run(*n, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sandbox:", err)
		os.Exit(1)
	}
}

func run(n int, asJSON bool) error {
	ctx := context.Background()
	cli, err := sandbox.NewClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	image, err := sandboxtest.Image(ctx, cli)
	if err != nil {
		return err
	}
	b := make([]byte, 4)
	rand.Read(b)
	inst := "bench" + hex.EncodeToString(b)
	state, err := os.MkdirTemp("", "clawguard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	defer removeInstance(cli, inst)

	m, err := sandbox.New(ctx, sandbox.Options{
		Client: cli, Instance: inst, WorkspaceRoot: filepath.Join(state, "workspaces"), PruneInterval: -1,
		Profiles: map[string]sandbox.Profile{
			"plain":  {Image: image},
			"pooled": {Image: image, PoolSize: 1},
		},
	})
	if err != nil {
		return err
	}
	defer m.Close(context.Background())
	exec1 := func(agent, session string) (sandbox.ExecResult, time.Duration, error) {
		start := time.Now()
		res, err := m.Exec(ctx, sandbox.ExecRequest{Agent: agent, Session: session, Argv: []string{"true"}})
		d := time.Since(start)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("exit %d", res.ExitCode)
		}
		return res, d, err
	}

	api, stopAPI, err := apiServer(m, state)
	if err != nil {
		return err
	}
	defer stopAPI()
	// Start the warm sessions (not timed).
	if _, _, err := exec1("plain", "warm"); err != nil {
		return err
	}
	if _, err := api(); err != nil {
		return err
	}
	if err := m.Warm(ctx, "pooled"); err != nil {
		return err
	}

	// The cases take turns in every round, so load from anything else on
	// the machine falls on all of them alike.
	var dockerRun, cold, warm, pooled, viaAPI []time.Duration
	for i := 0; i < n; i++ {
		fmt.Fprintf(os.Stderr, "\rround %d/%d", i+1, n)
		start := time.Now()
		if out, err := exec.Command("docker", "run", "--rm", image, "true").CombinedOutput(); err != nil {
			return fmt.Errorf("docker run: %v: %s", err, out)
		}
		dockerRun = append(dockerRun, time.Since(start))

		res, d, err := exec1("plain", fmt.Sprintf("cold%d", i))
		if err != nil {
			return err
		}
		if !res.Created {
			return fmt.Errorf("cold exec %d did not create its container", i)
		}
		cold = append(cold, d)
		if err := m.Remove(res.SandboxID); err != nil {
			return err
		}

		res, d, err = exec1("plain", "warm")
		if err != nil {
			return err
		}
		if res.Created {
			return fmt.Errorf("warm exec %d created a container", i)
		}
		warm = append(warm, d)

		d, err = api()
		if err != nil {
			return err
		}
		viaAPI = append(viaAPI, d)

		res, d, err = exec1("pooled", fmt.Sprintf("pool%d", i))
		if err != nil {
			return err
		}
		if !res.Pooled || res.Created {
			return fmt.Errorf("pooled exec %d did not use the pool", i)
		}
		pooled = append(pooled, d)
		if err := m.Remove(res.SandboxID); err != nil {
			return err
		}
		// Nothing may run in the background into the next round.
		if err := m.Warm(ctx, "pooled"); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr)

	all := []stats{
		summarize("docker run --rm IMAGE true", dockerRun),
		summarize("cold first exec (create+start+exec)", cold),
		summarize("warm exec", warm),
		summarize("pooled first exec", pooled),
		summarize("warm exec via sidecar API (unix socket)", viaAPI),
	}
	ratios := map[string]float64{
		"warm_p50_over_docker_run_p50":     all[2].P50ms / all[0].P50ms,
		"pooled_p50_over_warm_p50":         all[3].P50ms / all[2].P50ms,
		"cold_p50_over_docker_run_p50":     all[1].P50ms / all[0].P50ms,
		"api_warm_p50_over_docker_run_p50": all[4].P50ms / all[0].P50ms,
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"image": image, "iterations": n, "cases": all, "ratios": ratios})
	}
	fmt.Printf("%-42s %5s %9s %9s %9s\n", "case", "n", "p50 ms", "p95 ms", "mean ms")
	for _, s := range all {
		fmt.Printf("%-42s %5d %9.1f %9.1f %9.1f\n", s.Case, s.N, s.P50ms, s.P95ms, s.Mean)
	}
	fmt.Printf("\nwarm exec p50 / docker run p50   = %.3f (target <= 0.200)\n", ratios["warm_p50_over_docker_run_p50"])
	fmt.Printf("pooled first exec p50 / warm p50 = %.2f (target <= 1.50)\n", ratios["pooled_p50_over_warm_p50"])
	fmt.Printf("cold first exec p50 / docker run = %.2f\n", ratios["cold_p50_over_docker_run_p50"])
	fmt.Printf("API warm exec p50 / docker run   = %.3f\n", ratios["api_warm_p50_over_docker_run_p50"])
	return nil
}

// apiServer serves m's sandboxes through a sidecar Server on a unix socket
// and returns a function timing one warm exec through it.
func apiServer(m *sandbox.Manager, state string) (func() (time.Duration, error), func(), error) {
	srv, err := sidecar.New(sidecar.Options{Sandboxes: m, Policy: sidecar.Allowlist{{Agent: "*", Path: "/bin/true", Target: sidecar.TargetSandbox}}})
	if err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(state, "bench.sock")
	l, err := sidecar.Listen(sock)
	if err != nil {
		return nil, nil, err
	}
	go srv.Serve(l)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	body := []byte(`{"agent":"plain","session":"api","argv":["/bin/true"]}`)
	once := func() (time.Duration, error) {
		req, _ := http.NewRequest("POST", "http://sidecar/v1/exec", bytes.NewReader(body))
		req.Header.Set(sidecar.HeaderIdentity, "local")
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		var r sidecar.ExecResponse
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 || r.ExitCode != 0 {
			return 0, fmt.Errorf("API exec: status %d, exit %d", resp.StatusCode, r.ExitCode)
		}
		return d, nil
	}
	return once, func() { srv.Shutdown(context.Background()) }, nil
}

// removeInstance removes whatever the benchmark left, even after an error.
func removeInstance(cli *client.Client, inst string) {
	ctx := context.Background()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", sandbox.LabelInstance+"="+inst)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
		return
	}
	for _, c := range res.Items {
		cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	}
	if len(res.Items) > 0 {
		fmt.Fprintf(os.Stderr, "cleanup: removed %d containers of instance %s\n", len(res.Items), inst)
	}
}
