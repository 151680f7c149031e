package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/wire"
)

type stats struct {
	Case  string  `json:"case"`
	N     int     `json:"n"`
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	P99ms float64 `json:"p99_ms"`
	Mean  float64 `json:"mean_ms"`
}

func summarize(name string, ds []time.Duration) stats {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	pct := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return stats{name, len(ds), ms(pct(0.50)), ms(pct(0.95)), ms(pct(0.99)), ms(sum / time.Duration(len(ds)))}
}

func main() {
	n := flag.Int("n", 30, "rounds of the alternating cases")
	seq := flag.Int("seq", 200, "sequential execs in one session")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()
	if err := run(*n, *seq, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sandbox:", err)
		os.Exit(1)
	}
}

func run(n, seq int, asJSON bool) error {
	ctx := context.Background()
	cli, err := sandbox.NewClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	agentBin, err := sandboxtest.Agent(ctx)
	if err != nil {
		return err
	}
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
		AgentPath: agentBin,
		Profiles: map[string]sandbox.Profile{
			"plain":  {Image: image},
			"docker": {Image: image, Exec: sandbox.ExecDocker},
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
	warmRes, _, err := exec1("plain", "warm")
	if err != nil {
		return err
	}
	if _, _, err := exec1("docker", "warm"); err != nil {
		return err
	}
	if _, err := api(); err != nil {
		return err
	}
	if err := m.Warm(ctx, "pooled"); err != nil {
		return err
	}
	rss, cgroup, err := idleMemory(cli, warmRes.SandboxID)
	if err != nil {
		return fmt.Errorf("idle memory: %w", err)
	}
	timeCLI := func(args ...string) (time.Duration, error) {
		start := time.Now()
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("docker %s: %v: %s", args[0], err, out)
		}
		return time.Since(start), nil
	}

	// The cases take turns in every round, so load from anything else on
	// the machine falls on all of them alike.
	var dockerRun, dockerExec, viaAPI, warm, warmDocker, pooled, cold []time.Duration
	cases := []func(i int) error{
		func(int) error {
			d, err := timeCLI("run", "--rm", image, "true")
			dockerRun = append(dockerRun, d)
			return err
		},
		func(int) error {
			d, err := timeCLI("exec", warmRes.SandboxID, "true")
			dockerExec = append(dockerExec, d)
			return err
		},
		func(int) error {
			d, err := api()
			viaAPI = append(viaAPI, d)
			return err
		},
		func(i int) error {
			res, d, err := exec1("plain", "warm")
			if err == nil && res.Created {
				err = fmt.Errorf("warm exec %d created a container", i)
			}
			warm = append(warm, d)
			return err
		},
		func(int) error {
			_, d, err := exec1("docker", "warm")
			warmDocker = append(warmDocker, d)
			return err
		},
		func(i int) error {
			res, d, err := exec1("pooled", fmt.Sprintf("pool%d", i))
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
			// The refill (and its warm-up run) ends before the next case.
			return m.Warm(ctx, "pooled")
		},
		func(i int) error {
			res, d, err := exec1("plain", fmt.Sprintf("cold%d", i))
			if err != nil {
				return err
			}
			if !res.Created {
				return fmt.Errorf("cold exec %d did not create its container", i)
			}
			cold = append(cold, d)
			return m.Remove(res.SandboxID)
		},
	}
	// Every round runs every case once, in a fresh random order, so no case
	// always follows the same other one (the engine's work for one case,
	// such as a container removal, can linger into the next).
	for i := 0; i < n; i++ {
		fmt.Fprintf(os.Stderr, "\rround %d/%d", i+1, n)
		for _, k := range mrand.Perm(len(cases)) {
			if err := cases[k](i); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(os.Stderr)
	// Let the engine finish the rounds' removals before the sequential run.
	time.Sleep(2 * time.Second)
	var sequential []time.Duration
	for i := 0; i < seq; i++ {
		d, err := api()
		if err != nil {
			return err
		}
		sequential = append(sequential, d)
	}

	all := []stats{
		summarize("docker run --rm IMAGE true", dockerRun),
		summarize("docker exec CONTAINER true", dockerExec),
		summarize("warm exec via sidecar API (agent)", viaAPI),
		summarize("warm exec, Manager (agent)", warm),
		summarize(`warm exec, Manager ("exec": "docker")`, warmDocker),
		summarize("pooled first exec (agent)", pooled),
		summarize("cold first exec (agent)", cold),
		summarize(fmt.Sprintf("%d sequential execs, one session, API", seq), sequential),
	}
	ratios := map[string]float64{
		"api_warm_p50_over_docker_run_p50":     all[2].P50ms / all[0].P50ms,
		"api_warm_p50_over_docker_exec_p50":    all[2].P50ms / all[1].P50ms,
		"warm_p50_over_docker_exec_path_p50":   all[3].P50ms / all[4].P50ms,
		"pooled_p50_over_warm_p50":             all[5].P50ms / all[3].P50ms,
		"cold_p50_over_docker_run_p50":         all[6].P50ms / all[0].P50ms,
		"sequential_p99_over_p50":              all[7].P99ms / all[7].P50ms,
		"idle_sandbox_rss_mib":                 float64(rss) / (1 << 20),
		"idle_sandbox_memory_cgroup_usage_mib": float64(cgroup) / (1 << 20),
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"image": image, "rounds": n, "cases": all, "ratios": ratios})
	}
	fmt.Printf("%-44s %5s %9s %9s %9s %9s\n", "case", "n", "p50 ms", "p95 ms", "p99 ms", "mean ms")
	for _, s := range all {
		fmt.Printf("%-44s %5d %9.2f %9.2f %9.2f %9.2f\n", s.Case, s.N, s.P50ms, s.P95ms, s.P99ms, s.Mean)
	}
	fmt.Printf("\nAPI warm exec p50 / docker run p50       = %.4f (target <= 0.02)\n", ratios["api_warm_p50_over_docker_run_p50"])
	fmt.Printf("API warm exec p50 / docker exec p50      = %.4f (target <= 0.1)\n", ratios["api_warm_p50_over_docker_exec_p50"])
	fmt.Printf("pooled first exec p50 / warm exec p50    = %.2f (target <= 1.5)\n", ratios["pooled_p50_over_warm_p50"])
	fmt.Printf("%d sequential execs p99 / p50           = %.2f (target <= 3)\n", seq, ratios["sequential_p99_over_p50"])
	fmt.Printf("warm exec p50, agent / docker exec path  = %.4f\n", ratios["warm_p50_over_docker_exec_path_p50"])
	fmt.Printf("cold first exec p50 / docker run p50     = %.2f\n", ratios["cold_p50_over_docker_run_p50"])
	fmt.Printf("idle sandbox RSS (docker-init + agent)   = %.2f MiB (target <= 10)\n", ratios["idle_sandbox_rss_mib"])
	fmt.Printf("idle sandbox memory cgroup usage         = %.2f MiB\n", ratios["idle_sandbox_memory_cgroup_usage_mib"])
	return nil
}

// idleMemory returns the summed VmRSS of an idle sandbox's processes
// (docker-init and its descendants: the agent) read from the host's /proc,
// and the container's memory cgroup usage (cgroup v1 or v2; 0 if neither
// is readable).
func idleMemory(cli *client.Client, id string) (rss, cgroup int64, err error) {
	ins, err := cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, 0, err
	}
	pids := []int{ins.Container.State.Pid}
	for i := 0; i < len(pids); i++ {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pids[i], pids[i]))
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
	}
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			return 0, 0, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				rss += kb << 10
			}
		}
	}
	if len(pids) < 2 {
		return 0, 0, fmt.Errorf("container %.12s: no agent process under docker-init (pids %v)", id, pids)
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pids[0]))
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var f string
		switch {
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			f = filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.usage_in_bytes")
		case parts[0] == "0" && parts[1] == "":
			f = filepath.Join("/sys/fs/cgroup", parts[2], "memory.current")
		default:
			continue
		}
		if v, err := os.ReadFile(f); err == nil {
			cgroup, _ = strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		}
	}
	return rss, cgroup, nil
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
		req, _ := http.NewRequest("POST", "http://sidecar"+wire.PathExec, bytes.NewReader(body))
		req.Header.Set(wire.HeaderIdentity, "local")
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
