package caddymodule

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clawguard/clawguard/internal/testcaddy"
)

// scrape reads Caddy's admin /metrics and parses the text format.
func scrape(t *testing.T, adminPort int) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams, raw
}

func counter(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for _, lp := range m.Label {
			if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
				continue next
			}
		}
		return m.GetCounter().GetValue()
	}
	return -1
}

func TestMetricsCountExactlyWhatHappened(t *testing.T) {
	up := upstream(t)
	port, admin := testcaddy.FreePort(t), testcaddy.FreePort(t)
	cfg := testcaddy.Global(admin) + fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	clawguard {
		token %s
		state_dir %s
		rate_limit {
			attempts 3
		}
	}
	reverse_proxy %s
}
`, port, testToken, t.TempDir(), strings.TrimPrefix(up.URL, "http://"))
	testcaddy.Load(t, cfg)
	e := &gateEnv{base: fmt.Sprintf("http://127.0.0.1:%d", port)}

	before, _ := scrape(t, admin)
	for i := 0; i < 2; i++ {
		e.do(t, "", "GET", "/", map[string]string{"Authorization": "Bearer " + testToken})
	}
	e.do(t, "", "GET", "/", nil) // local
	// The 3rd failure locks the client out; the 4th request is refused as
	// locked out without being checked.
	for i := 0; i < 4; i++ {
		e.do(t, "127.0.0.9", "GET", "/", map[string]string{"Authorization": "Bearer wrong-wrong-wrong-wrong"})
	}
	e.do(t, "", "GET", "/", remote) // no credential

	after, raw := scrape(t, admin)
	delta := func(name string, labels map[string]string) float64 {
		return counter(after, name, labels) - counter(before, name, labels)
	}
	checks := []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"method": "token", "result": "success"}, 2},
		{map[string]string{"method": "local", "result": "success"}, 1},
		{map[string]string{"method": "token", "result": "failure"}, 3},
		{map[string]string{"method": "none", "result": "failure"}, 1},
		{map[string]string{"method": "password", "result": "success"}, 0},
	}
	for _, c := range checks {
		if got := delta("clawguard_auth_attempts_total", c.labels); got != c.want {
			t.Errorf("auth_attempts_total%v moved by %v, want %v", c.labels, got, c.want)
		}
	}
	if got := delta("clawguard_auth_rate_limited_total", nil); got != 1 {
		t.Errorf("auth_rate_limited_total moved by %v, want 1", got)
	}

	// A reload with the same config re-registers without errors and keeps
	// serving the metrics.
	if err := testcaddy.LoadErr(cfg + "\n"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if fams, _ := scrape(t, admin); fams["clawguard_auth_attempts_total"] == nil {
		t.Fatal("metrics gone after reload")
	}

	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(filterFamilies(raw, "clawguard_"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	}
}

// filterFamilies keeps only the lines of metric families with prefix, so
// promtool judges our names and not Caddy's own.
func filterFamilies(raw []byte, prefix string) []byte {
	var out bytes.Buffer
	for line := range strings.SplitSeq(string(raw), "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if strings.HasPrefix(name, prefix) {
			out.WriteString(line + "\n")
		}
	}
	return out.Bytes()
}
