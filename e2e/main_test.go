package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/stack"
)

// clawguardBin is the clawguard binary built once for the package.
var clawguardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clawguard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if clawguardBin, err = stack.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startStack runs `clawguard up` for a test and waits until it is ready;
// it returns the token line's value.
func startStack(t *testing.T, stateDir string, args ...string) (*stack.Stack, string) {
	t.Helper()
	s, err := stack.Start(stack.Options{Binary: clawguardBin, StateDir: stateDir,
		Env: []string{"CLAWGUARD_VAULT_PASSPHRASE=e2e passphrase"}, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	// Stop gracefully: `up` waits for the sidecar, which removes its
	// per-session sandboxes, before the leak checks of sandboxtest run.
	t.Cleanup(func() {
		if err := s.Stop(30 * time.Second); err != nil {
			t.Errorf("stopping clawguard up: %v", err)
		}
	})
	token, err := s.Ready(90 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return s, token
}
