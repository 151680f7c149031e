// Package e2e tests clawguard as users run it: built binaries, started as
// processes, driven over the network.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// clawguardBin is the clawguard binary built once for the package.
var clawguardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clawguard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	clawguardBin = filepath.Join(dir, "clawguard")
	build := exec.Command("go", "build", "-o", clawguardBin, "../cmd/clawguard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building clawguard:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
