package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/stack"
)

// upLines runs `clawguard up` and returns its [up] lines up to the
// "Ctrl-C stops everything." one, with the stack still running.
func upLines(t *testing.T, stateDir string, env []string) (*stack.Stack, []string) {
	t.Helper()
	s, err := stack.Start(stack.Options{Binary: clawguardBin, StateDir: stateDir, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(30 * time.Second); err != nil {
			t.Errorf("stopping clawguard up: %v", err)
		}
	})
	var lines []string
	for {
		m, err := s.WaitLine(`^\[up\] (.*)$`, 90*time.Second)
		if err != nil {
			t.Fatalf("%v; [up] lines so far:\n%s", err, strings.Join(lines, "\n"))
		}
		lines = append(lines, m[1])
		if strings.HasPrefix(m[1], "Ctrl-C stops everything") {
			return s, lines
		}
	}
}

// TestUpTryLinesRunAsPrinted: `up` names its state directory, and every
// "try:" line it prints runs as printed in a shell — with the --state-dir
// it needs and the binary's own path, since this one is not on PATH.
func TestUpTryLinesRunAsPrinted(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state") // created by up, as the default is
	env := append(os.Environ(), "CLAWGUARD_VAULT_PASSPHRASE=e2e passphrase")
	_, lines := upLines(t, stateDir, env[len(env)-1:])
	var tries []string
	stateShown := false
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "try:"); ok {
			tries = append(tries, strings.TrimSpace(rest))
		}
		if strings.HasPrefix(l, "state:    "+stateDir+"  ") {
			stateShown = true
		}
	}
	if !stateShown {
		t.Errorf("no state: line naming %s in:\n%s", stateDir, strings.Join(lines, "\n"))
	}
	if len(tries) < 3 {
		t.Fatalf("want at least 3 try: lines (curl, devices, audit), got %q", tries)
	}
	for _, try := range tries {
		if !strings.Contains(try, "--state-dir "+stateDir) && !strings.Contains(try, "devices list") {
			t.Errorf("try line lacks --state-dir %s: %s", stateDir, try)
		}
		if strings.HasPrefix(try, "clawguard ") {
			t.Errorf("try line runs a bare clawguard, which is not on PATH here: %s", try)
		}
		cmd := exec.Command("sh", "-c", try)
		cmd.Env = env
		cmd.Dir = t.TempDir() // not the module: nothing found by accident
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("try line failed: %s\n%v\n%s", try, err, out)
			continue
		}
		switch {
		case strings.HasPrefix(try, "curl "):
			if !strings.Contains(string(out), "clawguard demo upstream: hello") {
				t.Errorf("curl try line did not reach the demo upstream: %s", out)
			}
		case strings.Contains(try, "devices list"):
			if !strings.Contains(string(out), "No device is paired") {
				t.Errorf("devices try line: %s", out)
			}
		case strings.Contains(try, " audit"):
			if !strings.Contains(string(out), "state "+stateDir) {
				t.Errorf("audit try line audited another state dir: %s", out)
			}
		}
	}
}

// TestAuditPassesUpsOwnConfig: `clawguard audit` (with --deep, against the
// running stack) raises no warn or critical finding about what `up` wrote:
// only findings about the machine (toolchain versions, other processes'
// open ports) may remain.
func TestAuditPassesUpsOwnConfig(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state") // created by up, as the default is
	s, _ := upLines(t, stateDir, []string{"CLAWGUARD_VAULT_PASSPHRASE=e2e passphrase"})
	cmd := exec.Command(clawguardBin, "audit", "--state-dir", stateDir, "--json", "--deep", "--gateway", s.Base)
	cmd.Env = append(os.Environ(), "CLAWGUARD_VAULT_PASSPHRASE=e2e passphrase")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	var rep struct {
		Config   string `json:"config"`
		Findings []struct {
			Check, Severity, Finding, Path string
		} `json:"findings"`
		Checks []struct{ ID, Status, Note string } `json:"checks"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Config != filepath.Join(stateDir, "Caddyfile") {
		t.Fatalf("audited %q, not up's Caddyfile", rep.Config)
	}
	ports := []string{s.Base[strings.LastIndex(s.Base, ":"):], s.UI[strings.LastIndex(s.UI, ":"):],
		s.SidecarMetrics[strings.LastIndex(s.SidecarMetrics, ":"):], s.Admin[strings.LastIndex(s.Admin, ":"):]}
	for _, f := range rep.Findings {
		if f.Severity == "info" {
			continue
		}
		machine := strings.HasPrefix(f.Check, "runtime.") || f.Check == "network.open_interfaces"
		for _, p := range ports {
			if strings.Contains(f.Finding, p+" ") || strings.Contains(f.Finding, "port "+p[1:]+" ") {
				machine = false // about one of up's own listeners
			}
		}
		if !machine {
			t.Errorf("audit flags up's own setup: %s %s: %s (%s)", f.Severity, f.Check, f.Finding, f.Path)
		}
	}
	for _, c := range rep.Checks {
		if c.Status == "error" {
			t.Errorf("check %s failed to run: %s", c.ID, c.Note)
		}
	}
}
