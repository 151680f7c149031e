package tsnet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/internal/testport"
	"github.com/clawguard/clawguard/tsnet"
	"github.com/clawguard/clawguard/tsnet/tsnettest"
	"tailscale.com/tstest"
	"tailscale.com/tstest/integration/testcontrol"
)

func TestTaggedAndUserPeers(t *testing.T) {
	tstest.ResourceCheck(t)
	tsnettest.CheckNoNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// TagOwners makes the test control server honour requested tags.
	tn := tsnettest.Start(t, func(c *testcontrol.Server) { c.TagOwners = map[string][]string{"tag:ci": nil} })
	s, srv := serveWhoamiNode(t, tn, 8443)

	ip := tsnettest.WaitNode(t, ctx, "side")
	url := fmt.Sprintf("http://%s:8443/", ip)
	alice := tn.Client(t, ctx, "alice")
	ci := tn.Client(t, ctx, "ci", "tag:ci")

	user := alice.Ask(t, url)
	tagged := ci.Ask(t, url)
	if !user.OverTailnet || user.Peer.LoginName != alice.Login || user.Peer.Tagged() {
		t.Fatalf("user peer: %+v", user)
	}
	if !tagged.OverTailnet || tagged.Peer.LoginName != "" || len(tagged.Peer.Tags) != 1 || tagged.Peer.Tags[0] != "tag:ci" {
		t.Fatalf("tagged peer: %+v (the tagging user was %s)", tagged, ci.Login)
	}

	for _, tc := range []struct {
		name   string
		policy tsnet.Policy
		peer   tsnet.Peer
		want   string
		ok     bool
	}{
		{"user allowed", tsnet.Policy{AllowUsers: []string{alice.Login}}, user.Peer, alice.Login, true},
		{"user allowed, any case", tsnet.Policy{AllowUsers: []string{strings.ToUpper(alice.Login)}}, user.Peer, alice.Login, true},
		{"user not listed", tsnet.Policy{AllowUsers: []string{"mallory@example.com"}, AllowTags: []string{"*"}}, user.Peer, alice.Login, false},
		{"tag allowed", tsnet.Policy{AllowTags: []string{"tag:ci"}}, tagged.Peer, "tag:ci", true},
		{"tag not listed", tsnet.Policy{AllowTags: []string{"tag:prod"}, AllowUsers: []string{"*"}}, tagged.Peer, "tag:ci", false},
		// Whoever tagged the node does not lend it their identity.
		{"tagged node is not its tagger", tsnet.Policy{AllowUsers: []string{ci.Login}}, tagged.Peer, "tag:ci", false},
	} {
		id, ok := tc.policy.Allow(tc.peer)
		if id != tc.want || ok != tc.ok {
			t.Errorf("%s: Allow = %q, %v; want %q, %v", tc.name, id, ok, tc.want, tc.ok)
		}
	}

	// A second listener on the same port shares the node; closing one
	// leaves the other serving, closing both stops the node.
	ln2, err := tsnet.Listen("side", s, 8443, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln2.Close()
	if a := alice.Ask(t, url); a.Peer.LoginName != alice.Login {
		t.Fatalf("after closing a second listener: %+v", a)
	}
	srv.Close()
	if h := tsnet.Health(); len(h) != 0 {
		t.Errorf("node left running after its listeners closed: %+v", h)
	}
}

// TestStateDirMustBePrivate: a node state directory others can write is
// refused (someone could plant a node key), the node reports why, and
// nothing is started in it.
func TestStateDirMustBePrivate(t *testing.T) {
	tstest.ResourceCheck(t)
	tsnettest.CheckNoNodes(t)
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	ln, err := tsnet.Listen("open", tsnet.Settings{Dir: dir, Hostname: "open", ControlURL: fmt.Sprintf("http://127.0.0.1:%d", testport.Free(t))}, 80, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, _ := tsnet.NodeStatus("open")
		if h.State == tsnet.StateFailed && strings.Contains(h.Error, "writable by group or others") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node with an open state dir: %+v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written into the refused state dir: %v", entries)
	}
}
