package audit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/audit"
	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
)

// TestDeepTailnetPeers: the gate watches two node hosts over a real
// (offline) tailnet; the one that is not there is a warning naming it,
// since when and why, the one that answers is not; with only the healthy
// one watched there is no finding.
func TestDeepTailnetPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn := tsnettest.Start(t, nil)
	f := newFixture(t)
	admin := testcaddy.FreePort(t)
	config := func(peers string) string {
		return testcaddy.Global(admin, fmt.Sprintf(`	tailnet {
		node gate {
			control_url %s
			ephemeral
			state_dir %s
		}
%s	}
`, tn.ControlURL, filepath.Join(f.state, "tailnet", "gate"), peers)) + "http://127.0.0.1:18080 {\n\trespond ok\n}\n"
	}
	const node1 = "\t\tpeer node1 node1:18791 {\n\t\t\tinterval 1s\n\t\t\ttimeout 800ms\n\t\t}\n"
	const ghost = "\t\tpeer ghost ghost:18791 {\n\t\t\tinterval 1s\n\t\t\ttimeout 800ms\n\t\t}\n"
	cfg := config(node1 + ghost)
	testcaddy.Load(t, cfg)
	f.caddyfile(cfg)
	f.opts.Deep = true

	// node1 is a node host on the tailnet serving /healthz, as its sidecar does.
	s, err := tsnet.NodeConfig{ControlURL: tn.ControlURL, Ephemeral: true}.Resolve("node1", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tsnet.Listen("node1", s, 18791, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for {
		n1, _ := tsnet.PeerStatus("node1")
		g, _ := tsnet.PeerStatus("ghost")
		if n1.State == tsnet.PeerUp && g.State == tsnet.PeerDown {
			t.Logf("ghost: %s", g.LastError)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("peers not settled: node1 %+v, ghost %+v", n1, g)
		case <-time.After(50 * time.Millisecond):
		}
	}
	fs := f.check("deep.tailnet_peers")
	if len(fs) != 1 {
		t.Fatalf("want one finding, for ghost:\n%s", dump(fs))
	}
	fd := wantFinding(t, fs, audit.SeverityWarn, "node host ghost (ghost:18791, via tailnet node gate) is down since 20", "GET /healthz")
	if !strings.Contains(fd.Remedy, "ghost:18791 is running and on the tailnet") || !strings.Contains(fd.Remedy, "clawguard tailnet status") {
		t.Errorf("remedy: %q", fd.Remedy)
	}

	// Only the healthy host watched: nothing to report.
	cfg = config(node1)
	if err := testcaddy.LoadErr(cfg); err != nil {
		t.Fatal(err)
	}
	f.caddyfile(cfg)
	wantNone(t, f.check("deep.tailnet_peers"))
}
