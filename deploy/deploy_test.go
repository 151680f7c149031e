package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// tool finds an external checker; in CI it must exist, elsewhere the test
// skips without it.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func TestPrometheusRulesAndConfig(t *testing.T) {
	promtool := tool(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"check", "config", "prometheus/prometheus.yml"},
	} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

func TestSystemdUnits(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	dir := t.TempDir()
	units, _ := filepath.Glob("systemd/*.service")
	if len(units) != 2 {
		t.Fatalf("want the caddy and sidecar units, found %v", units)
	}
	for _, u := range units {
		b, _ := os.ReadFile(u)
		s := string(b)
		for _, want := range []string{"NoNewPrivileges=true", "ProtectSystem=strict", "PrivateTmp=true", "UMask=0077"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s lacks %s", u, want)
			}
		}
		if strings.Contains(u, "caddy") && strings.Contains(s, "docker") {
			t.Errorf("%s: the gate must not get Docker access", u)
		}
		// Verify with a binary that exists on this machine.
		s = strings.ReplaceAll(s, "/usr/local/bin/clawguard", "/bin/true")
		os.WriteFile(filepath.Join(dir, filepath.Base(u)), []byte(s), 0o644)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.service"))
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestComposeFile(t *testing.T) {
	compose := tool(t, "docker-compose")
	cmd := exec.Command(compose, "-f", "docker-compose.yml", "config", "-q")
	cmd.Env = append(os.Environ(), "CLAWGUARD_VAULT_PASSPHRASE=compose-check")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}

// TestMetricNamesExist ties the dashboard and the alerts to the metrics the
// code registers: a renamed metric must not leave a silent panel or alert.
func TestMetricNamesExist(t *testing.T) {
	defined := map[string]bool{}
	nameRe := regexp.MustCompile(`clawguard_[a-z_]+`)
	quotedRe := regexp.MustCompile(`"(clawguard_[a-z_]+)"`)
	filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, m := range quotedRe.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
		// Names built from Namespace "clawguard" and Name "x".
		for _, m := range regexp.MustCompile(`Namespace:\s*"clawguard",\s*Name:\s*"([a-z_]+)"`).FindAllStringSubmatch(string(b), -1) {
			defined["clawguard_"+m[1]] = true
		}
		return nil
	})
	dash, err := os.ReadFile("grafana/clawguard-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var parsed map[string]any
	if err := json.Unmarshal(dash, &parsed); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	alerts, _ := os.ReadFile("prometheus/alerts.yml")
	for file, text := range map[string]string{"dashboard": string(dash), "alerts": string(alerts)} {
		for _, n := range nameRe.FindAllString(text, -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
			if !defined[base] {
				t.Errorf("%s uses %s, which no Go code defines", file, n)
			}
		}
	}
}
