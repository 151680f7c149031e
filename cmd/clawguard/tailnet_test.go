package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"tailscale.com/envknob"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/tsnet"
)

// The test's tailnet node must stay on loopback: no port-mapping probes of
// the LAN gateway, no host addresses, no log upload (read once, so set
// before any node starts).
func init() {
	envknob.Setenv("TS_DISABLE_PORTMAPPER", "1")
	envknob.Setenv("TS_DEBUG_OMIT_LOCAL_ADDRS", "1")
	envknob.Setenv("TS_NO_LOGS_NO_SUPPORT", "true")
}

// TestTailnetStatus runs `clawguard tailnet status` against real Caddy
// whose tailnet node cannot reach its control server: the command names
// the node, says it is not running and exits 1.
func TestTailnetStatus(t *testing.T) {
	admin, closed := testcaddy.FreePort(t), testcaddy.FreePort(t)
	state := t.TempDir()
	t.Cleanup(func() { // after Caddy stops (cleanups run last-in first-out)
		for deadline := time.Now().Add(10 * time.Second); len(tsnet.Health()) > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	})
	testcaddy.Load(t, testcaddy.Global(admin, fmt.Sprintf(`	tailnet {
		node gate {
			control_url http://127.0.0.1:%d
			state_dir %s/gate
			ephemeral
		}
	}
`, closed, state))+`http://:8080 {
	bind tailnet/gate
	respond "hi"
}
`)
	adminAddr := fmt.Sprintf("localhost:%d", admin)

	r := runCLI(strings.NewReader(""), nil, "tailnet", "status", "--admin", adminAddr, "--json")
	wantCode(t, r, 1)
	var out struct {
		Nodes []tsnet.NodeHealth `json:"nodes"`
		Peers []tsnet.PeerHealth `json:"peers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Peers == nil {
		t.Fatalf("--json output %q: %v; want nodes and peers ([] for none)", r.stdout, err)
	}
	nodes := out.Nodes
	if len(nodes) != 1 || nodes[0].Node != "gate" || nodes[0].Up() || len(nodes[0].Listeners) != 1 || nodes[0].Listeners[0] != 8080 {
		t.Fatalf("nodes = %+v", nodes)
	}

	r = runCLI(strings.NewReader(""), nil, "tailnet", "status", "--admin", adminAddr)
	wantCode(t, r, 1)
	if !strings.Contains(r.stdout, "gate") || !strings.Contains(r.stdout, nodes[0].State) || !strings.Contains(r.stdout, "8080") {
		t.Errorf("status output:\n%s", r.stdout)
	}

	wantCode(t, runCLI(strings.NewReader(""), nil, "tailnet", "status", "--admin", "http://x/"), 2, "want host:port")
	wantCode(t, runCLI(strings.NewReader(""), nil, "tailnet", "status", "extra"), 2, "unexpected argument")
	wantCode(t, runCLI(strings.NewReader(""), nil, "tailnet"), 2, "missing subcommand")
	wantCode(t, runCLI(strings.NewReader(""), nil, "tailnet", "--help"), 0)
}
