package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStarterSandboxKeepsUsersConfig: with a sidecar.json of the user's
// own, up's starter sandbox changes nothing — not that file, and it writes
// no approvals.json either — and says whose profiles are in force.
func TestStarterSandboxKeepsUsersConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sidecar.json")
	mine := []byte(`{"version": 1, "sandboxes": {"main": {"image": "my-tools:1"}}}` + "\n")
	if err := os.WriteFile(cfg, mine, 0o600); err != nil {
		t.Fatal(err)
	}
	msg, err := starterSandbox(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if msg != "profiles from "+cfg {
		t.Errorf("banner line %q, want it to name %s", msg, cfg)
	}
	if got, _ := os.ReadFile(cfg); string(got) != string(mine) {
		t.Errorf("sidecar.json changed to %s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "approvals.json")); !os.IsNotExist(err) {
		t.Errorf("approvals.json written next to the user's own config: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), "sidecar.json") {
		t.Errorf("state dir holds %v, want only sidecar.json", entries)
	}
}
