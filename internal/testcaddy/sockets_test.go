package testcaddy

import (
	"fmt"
	"strings"
	"testing"

	_ "github.com/clawguard/clawguard/caddymodule" // the clawguard global option of Global
)

// TestLoadAndStopWaitForOldListeners: when LoadErr returns after a reload,
// only the new config's socket listens on the site's port; when Stop
// returns, none does. (Without the waits this shows only on a loaded
// machine: with four binaries running TestPairingStateSurvivesRestartAndReload
// at once, 86 of 1,200 runs failed on a reset connection or a port still
// bound; with them, none of 600.)
func TestLoadAndStopWaitForOldListeners(t *testing.T) {
	port := FreePort(t)
	cfg := Global(FreePort(t)) + fmt.Sprintf("http://127.0.0.1:%d {\n\trespond ok\n}\n", port)
	onPort := func() int {
		n := 0
		for _, addr := range listening() {
			if strings.HasSuffix(addr, fmt.Sprintf(":%04X", port)) {
				n++
			}
		}
		return n
	}
	for i := range 10 {
		if err := LoadErr(cfg); err != nil {
			t.Fatal(err)
		}
		if n := onPort(); n != 1 {
			t.Fatalf("load %d: %d sockets listen on the site's port, want 1", i, n)
		}
	}
	Stop()
	if n := onPort(); n != 0 {
		t.Fatalf("after Stop: %d sockets still listen on the site's port", n)
	}
}
