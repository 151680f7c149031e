package tsnet_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"tailscale.com/tstest"
	"tailscale.com/tstest/integration/testcontrol"

	"github.com/clawguard/clawguard/internal/testport"
	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
)

// TestDialer: a node with no listener, only a Dialer, reaches another
// node's listener (what the gate's clawguard_tailnet transport does), is
// seen there as itself, and stops with its last Dialer.
func TestDialer(t *testing.T) {
	tstest.ResourceCheck(t)
	tsnettest.CheckNoNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	tn := tsnettest.Start(t, func(c *testcontrol.Server) { c.TagOwners = map[string][]string{"tag:gate": nil} })
	serveWhoamiNode(t, tn, 8080)

	gw, err := tsnet.NodeConfig{ControlURL: tn.ControlURL, Ephemeral: true, Tags: []string{"tag:gate"}}.Resolve("gw", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := tsnet.NewDialer("gw", gw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ip := tsnettest.WaitNode(t, ctx, "side")
	tsnettest.WaitNode(t, ctx, "gw")
	if h, _ := tsnet.NodeStatus("gw"); h.Dialers != 1 || len(h.Listeners) != 0 {
		t.Errorf("gw health: %+v, want 1 dialer and no listener", h)
	}

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.Dial, DisableKeepAlives: true}}
	res, err := hc.Get(fmt.Sprintf("http://%s:8080/", ip))
	if err != nil {
		t.Fatalf("GET through the dialer: %v", err)
	}
	a := tsnettest.DecodeAnswer(t, res)
	if !a.OverTailnet || a.Error != "" || !strings.HasPrefix(a.Peer.NodeName, "gw.") || len(a.Peer.Tags) != 1 || a.Peer.Tags[0] != "tag:gate" {
		t.Fatalf("side saw %+v; want tagged node gw", a)
	}
	// MagicDNS names resolve through the node.
	res, err = hc.Get("http://side:8080/")
	if err != nil {
		t.Fatalf("GET side by its MagicDNS name: %v", err)
	}
	if a := tsnettest.DecodeAnswer(t, res); !strings.HasPrefix(a.Peer.NodeName, "gw.") {
		t.Fatalf("by name: %+v", a)
	}

	// Dial reaches it by its name, short or full, and refuses a
	// name or an address outside the tailnet instead of asking the
	// host's DNS or dialing over the host's network.
	for _, addr := range []string{"side:8080", "SIDE.tail-scale.ts.net.:8080", ip.String() + ":8080"} {
		c, err := d.Dial(ctx, "tcp", addr)
		if err != nil {
			t.Fatalf("Dial %s: %v", addr, err)
		}
		if got := c.RemoteAddr().String(); got != ip.String()+":8080" {
			t.Errorf("Dial %s connected to %s, want %s:8080", addr, got, ip)
		}
		c.Close()
	}
	for addr, want := range map[string]string{
		"ghost:8080":          "ghost is not a node of the tailnet",
		"side.example.com:80": "side.example.com is not a node of the tailnet",
		"127.0.0.1:8080":      "127.0.0.1 is not a tailnet address",
		"side":                "missing port",
	} {
		if c, err := d.Dial(ctx, "tcp", addr); err == nil || !strings.Contains(err.Error(), want) {
			if c != nil {
				c.Close()
			}
			t.Errorf("Dial %s: %v, want %q", addr, err, want)
		}
	}

	d.Close()
	if _, ok := tsnet.NodeStatus("gw"); ok {
		t.Error("node gw still running after its only Dialer closed")
	}
	if _, err := d.Dial(ctx, "tcp", fmt.Sprintf("%s:8080", ip)); !errors.Is(err, tsnet.ErrNodeClosed) {
		t.Errorf("dial after close: %v, want %v", err, tsnet.ErrNodeClosed)
	}
}

// TestDialerNodeDown: dialing through a node that cannot come up fails
// when the caller's deadline passes, saying what state the node is in.
func TestDialerNodeDown(t *testing.T) {
	tstest.ResourceCheck(t)
	tsnettest.CheckNoNodes(t)
	closed := fmt.Sprintf("http://127.0.0.1:%d", testport.Free(t))
	s, err := tsnet.NodeConfig{ControlURL: closed, Ephemeral: true}.Resolve("down", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := tsnet.NewDialer("down", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = d.Dial(ctx, "tcp", "100.64.0.1:80")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "tailnet node down: the node is not up (") {
		t.Fatalf("dial through a node that is down: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("dial took %v past its deadline", took)
	}
	t.Logf("error: %v", err)
	if _, err := tsnet.NewDialer("Bad Name", s, nil); err == nil {
		t.Error("NewDialer accepted an invalid node name")
	}
}
