package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/testcaddy"
	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
)

// TestTailnetStatusPeers: `clawguard tailnet status` lists the node hosts
// the gate watches after its nodes, exits 0 while they answer and 1 once
// one is down, saying why.
func TestTailnetStatusPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn := tsnettest.Start(t, nil)
	admin := testcaddy.FreePort(t)
	state := t.TempDir()
	t.Cleanup(func() { // after Caddy and node1 stop (cleanups run last-in first-out)
		for deadline := time.Now().Add(10 * time.Second); len(tsnet.Health()) > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	})
	testcaddy.Load(t, testcaddy.Global(admin, fmt.Sprintf(`	tailnet {
		node gate {
			control_url %s
			state_dir %s/gate
			ephemeral
		}
		peer node1 node1:18791 {
			interval 1s
			timeout 800ms
		}
	}
`, tn.ControlURL, state))+"http://127.0.0.1:18081 {\n\trespond ok\n}\n")
	adminAddr := fmt.Sprintf("localhost:%d", admin)

	s, err := tsnet.NodeConfig{ControlURL: tn.ControlURL, Ephemeral: true}.Resolve("node1", state)
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

	waitState := func(want string) {
		t.Helper()
		for {
			if h, _ := tsnet.PeerStatus("node1"); h.State == want {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("node1 never %s: %+v", want, tsnet.Peers())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	waitState(tsnet.PeerUp)
	r := runCLI(strings.NewReader(""), nil, "tailnet", "status", "--admin", adminAddr)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "PEER") || !peerLine(r.stdout, "node1", "up", "node1:18791", "gate") {
		t.Errorf("status with node1 up:\n%s", r.stdout)
	}

	// The host goes away: exit 1, and the line says why.
	srv.Close()
	waitState(tsnet.PeerDown)
	r = runCLI(strings.NewReader(""), nil, "tailnet", "status", "--admin", adminAddr)
	wantCode(t, r, 1)
	t.Logf("clawguard tailnet status with node1 down:\n%s", r.stdout)
	if !peerLine(r.stdout, "node1", "down", "GET /healthz") {
		t.Errorf("status with node1 down:\n%s", r.stdout)
	}
	r = runCLI(strings.NewReader(""), nil, "tailnet", "status", "--admin", adminAddr, "--json")
	wantCode(t, r, 1)
	var out struct {
		Peers []tsnet.PeerHealth `json:"peers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Peers) != 1 || out.Peers[0].Up || out.Peers[0].LastError == "" || out.Peers[0].Failures == 0 {
		t.Errorf("--json with node1 down: %v\n%s", err, r.stdout)
	}
}

// peerLine reports whether a line of out starts with peer and has every
// one of parts.
func peerLine(out, peer string, parts ...string) bool {
next:
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, peer+" ") {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		return true
	}
	return false
}
