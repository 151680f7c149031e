package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpSelfCommand: the try lines name this binary the way a shell finds
// it — "clawguard" only when PATH finds this very file, its path otherwise,
// and for a `go run` build "clawguard" with a hint to install it.
func TestUpSelfCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "clawguard")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/nonexistent")
	if cmd, hint := selfCommand(bin); cmd != bin || hint != "" {
		t.Errorf("not on PATH: %q %q, want the path", cmd, hint)
	}
	t.Setenv("PATH", dir)
	if cmd, hint := selfCommand(bin); cmd != "clawguard" || hint != "" {
		t.Errorf("on PATH: %q %q", cmd, hint)
	}
	t.Setenv("PATH", "/nonexistent")
	if cmd, hint := selfCommand("/tmp/go-build123/b001/exe/clawguard"); cmd != "clawguard" || !strings.Contains(hint, "go install ./cmd/...") {
		t.Errorf("go run build: %q %q", cmd, hint)
	}
	if got := shellQuote("/tmp/it's here"); got != `'/tmp/it'\''s here'` {
		t.Errorf("shellQuote: %s", got)
	}
	if got := upTryLines("cg", " --state-dir /s", "http://127.0.0.1:1", "127.0.0.1:2"); !strings.Contains(got[0], "$(cg vault get --state-dir /s gateway_token)") ||
		got[1] != "cg devices list --admin-url http://127.0.0.1:2" || got[2] != "cg audit --state-dir /s" {
		t.Errorf("try lines: %q", got)
	}
}
