package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/stack"
)

// TestUpReportsWhyCaddyWouldNotStart: when Caddy keeps exiting at start, up
// gives up as soon as the supervisor does (not after its 60 s wait for the
// gate) and says why, with Caddy's last output in the message.
func TestUpReportsWhyCaddyWouldNotStart(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "caddy")
	script := "#!/bin/sh\necho 'Error: adapting config using caddyfile: the cause of it all' >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"up", "--caddy", fake, "--state-dir", filepath.Join(dir, "state")}
	for _, flag := range []string{"--listen", "--admin-listen", "--sidecar-metrics", "--admin"} {
		port, err := stack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, flag, fmt.Sprintf("127.0.0.1:%d", port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, clawguardBin, args...)
	cmd.Env = append(os.Environ(), "CLAWGUARD_VAULT_PASSPHRASE=e2e passphrase")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("up still waited after %s for a Caddy that gave up:\n%s", took.Round(time.Second), out)
	}
	last := string(out)
	if i := strings.LastIndex(last, "\n[up]"); i >= 0 {
		last = last[i:]
	}
	t.Logf("up exited after %s: %v; its last lines:%s", took.Round(100*time.Millisecond), err, last)
	if err == nil || !strings.Contains(last, "caddy keeps exiting") || !strings.Contains(last, "the cause of it all") {
		t.Fatalf("up's failure does not carry Caddy's error: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "Ctrl-C stops everything") {
		t.Fatalf("up printed its ready banner for a Caddy that never ran:\n%s", out)
	}
}
