package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/pairclient"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
	"github.com/clawguard/clawguard/wire"
)

// TestWholeStack is docs/design.md's picture end to end, as built binaries: a
// device pairs, talks to the gateway over a WebSocket with its token, an
// agent's allowlisted command runs in a sandbox through the gate and the
// sidecar, an unknown one is approved by a person through the admin API,
// and both processes' metrics moved by exactly what the test did.
func TestWholeStack(t *testing.T) {
	cli := sandboxtest.Client(t)
	image := sandboxtest.TestImage(t, cli)
	instance := sandboxtest.Instance(t, cli)
	stateDir := t.TempDir()
	writeFile(t, filepath.Join(stateDir, wire.FileSidecarConfig), fmt.Sprintf(
		`{"instance": %q, "sandboxes": {"*": {"image": %q, "timeout": "30s"}}}`, instance, image))
	// echo is busybox in the test image: entries name the resolved program
	// and the applet.
	writeFile(t, approvals.DefaultPath(stateDir), `{"version": 1,
	  "defaults": {"mode": "ask", "ask_timeout": "1m"},
	  "agents": {"main": {"allow": [{"path": "/bin/busybox", "args": "^echo( .*)?$"}]}}}`)

	s, token := startStack(t, stateDir)
	gateMetrics, sidecarMetrics := "http://"+s.Admin+"/metrics", "http://"+s.SidecarMetrics+"/metrics"
	gate0, sidecar0 := scrape(t, gateMetrics), scrape(t, sidecarMetrics)
	// Admin API calls this test makes as the local identity, and the scrape
	// of the sidecar's /metrics just made (its site is gated too; the later
	// one comes after the gate's is read).
	localRequests := 1.0

	// 1. A device on this machine pairs (auto-approved as local).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key, _ := pairclient.GenerateKey()
	paired, err := pairclient.Pair(ctx, pairclient.Options{Gateway: s.Base, Name: "e2e phone", Key: key})
	if err != nil || !strings.HasPrefix(paired.Token, "cgd_") {
		t.Fatalf("pairing: %v %+v", err, paired)
	}

	// 2. Its token opens a WebSocket through the gate to the gateway.
	ws, _, err := pairclient.Dial(ctx, strings.Replace(s.Base, "http", "ws", 1)+"/ws", paired.Token, nil, nil)
	if err != nil {
		t.Fatalf("device WebSocket: %v", err)
	}
	ws.Write(ctx, websocket.MessageText, []byte("from the phone"))
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "from the phone" {
		t.Fatalf("echo over the device WebSocket: %q %v", msg, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")

	// 3. The agent's allowlisted command runs in a sandbox, through the
	// gate (shared token, judged as a remote client) and the sidecar.
	exec := func(argv ...string) (int, map[string]any) {
		return call(t, "POST", s.Base+"/sidecar/v1/exec", map[string]any{"agent": "main", "session": "e2e", "argv": argv},
			map[string]string{"Authorization": "Bearer " + token, "X-Forwarded-For": "192.0.2.10"})
	}
	if code, body := exec("echo", "hello from the sandbox"); code != 200 || body["stdout"] != "hello from the sandbox\n" || body["decision"] != "allow" {
		t.Fatalf("allowlisted exec: %d %v", code, body)
	}

	// 4. An unknown command waits for a person, who allows it once
	// through the gate's admin API (local identity, CSRF token).
	done := make(chan map[string]any, 1)
	go func() {
		code, body := exec("uname", "-s")
		body["status"] = code
		done <- body
	}()
	var id string
	for deadline := time.Now().Add(30 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		localRequests++
		code, body := call(t, "GET", s.UI+"/.clawguard/api/approvals?state=pending", nil, nil)
		if code != 200 {
			t.Fatalf("listing approvals through the gate: %d %v", code, body)
		}
		if l, _ := body["approvals"].([]any); len(l) == 1 {
			id, _ = l[0].(map[string]any)["id"].(string)
		}
	}
	if id == "" {
		t.Fatal("the unknown command never showed up as pending")
	}
	localRequests++
	_, sess := call(t, "GET", s.UI+"/.clawguard/api/session", nil, nil)
	csrf, _ := sess["csrf_token"].(string)
	localRequests++
	if code, body := call(t, "POST", s.UI+"/.clawguard/api/approvals/"+id, map[string]any{"decision": "allow-once"},
		map[string]string{pairing.CSRFHeader: csrf}); code != 200 {
		t.Fatalf("allow-once through the gate: %d %v", code, body)
	}
	select {
	case body := <-done:
		if body["status"] != 200 || body["stdout"] != "Linux\n" || body["decision"] != "allow-once" {
			t.Fatalf("approved exec: %v", body)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the approved command did not finish")
	}

	// 5. Both /metrics moved by exactly what happened, and pass promtool.
	gate1, sidecar1 := scrape(t, gateMetrics), scrape(t, sidecarMetrics)
	expect := []struct {
		before, after map[string]*dto.MetricFamily
		name          string
		labels        map[string]string
		delta         float64
	}{
		{gate0, gate1, "clawguard_pairing_requests_total", map[string]string{"result": "auto_approved"}, 1},
		{gate0, gate1, "clawguard_devices_paired", nil, 1},
		{gate0, gate1, "clawguard_auth_attempts_total", map[string]string{"method": "device", "result": "success"}, 1},
		{gate0, gate1, "clawguard_auth_attempts_total", map[string]string{"method": "token", "result": "success"}, 2},
		{gate0, gate1, "clawguard_auth_attempts_total", map[string]string{"method": "local", "result": "success"}, localRequests},
		{gate0, gate1, "clawguard_auth_attempts_total", map[string]string{"method": "token", "result": "failure"}, 0},
		{sidecar0, sidecar1, "clawguard_exec_total", map[string]string{"target": "sandbox", "result": "success"}, 2},
		{sidecar0, sidecar1, "clawguard_approval_decisions_total", map[string]string{"decision": "allow-once"}, 1},
		{sidecar0, sidecar1, "clawguard_approvals_pending", nil, 0},
	}
	for _, e := range expect {
		if got := value(e.after, e.name, e.labels) - value(e.before, e.name, e.labels); got != e.delta {
			t.Errorf("%s%v moved by %v, want %v", e.name, e.labels, got, e.delta)
		}
	}
	promtool(t, gateMetrics)
	promtool(t, sidecarMetrics)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// call sends a JSON request and decodes a JSON answer.
func call(t *testing.T, method, url string, body any, headers map[string]string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return 0, map[string]any{}
	}
	defer resp.Body.Close()
	out := map[string]any{}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func fetchMetrics(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(fetchMetrics(t, url)))
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// value is the sum of the family's samples whose labels include labels.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.Metric {
		for _, lp := range m.Label {
			if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

// promtool runs `promtool check metrics` on an endpoint's whole output.
func promtool(t *testing.T, url string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is required in CI (Debian package prometheus)")
		}
		t.Log("promtool not installed; skipping the lint")
		return
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(fetchMetrics(t, url))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics %s: %v\n%s", url, err, out)
	}
}
