package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/stack"
)

// TestPrometheusScrapesBothProcesses runs a real Prometheus server against
// the stack and waits until its API reports the gate and the sidecar up.
func TestPrometheusScrapesBothProcesses(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is required in CI (Debian package prometheus)")
		}
		t.Skip("prometheus not installed")
	}
	s, _ := startStack(t, t.TempDir())

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: clawguard-gate
    static_configs: [{targets: [%q]}]
  - job_name: clawguard-sidecar
    static_configs: [{targets: [%q]}]
`, s.Admin, s.SidecarMetrics)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	prom := exec.Command(promBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prom.Process.Kill(); prom.Wait() })

	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/targets", port)
	deadline := time.Now().Add(60 * time.Second)
	var last map[string]string
	for time.Now().Before(deadline) {
		last = targetHealth(api)
		if last["clawguard-gate"] == "up" && last["clawguard-sidecar"] == "up" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("Prometheus targets never both up: %v", last)
}

// targetHealth maps job → health from Prometheus's /api/v1/targets.
func targetHealth(api string) map[string]string {
	resp, err := http.Get(api)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return nil
	}
	out := map[string]string{}
	for _, tg := range body.Data.ActiveTargets {
		h := tg.Health
		if tg.LastError != "" {
			h += " (" + tg.LastError + ")"
		}
		out[tg.Labels["job"]] = h
	}
	return out
}
