package multihost

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestSweep: what a dead run left (a container and a network labelled with
// a pid no process has) is removed; what a live run owns stays.
func TestSweep(t *testing.T) {
	image := needImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Above the kernel's largest pid_max (2^22): never a live process.
	const deadPID = "4194305"
	live := strconv.Itoa(os.Getpid())
	made := map[string][]string{} // docker ls verb → IDs, removed at the end
	// create runs docker cmd… with the labels of run pid, then tail (the
	// name, or the image and its program).
	create := func(pid string, cmd []string, tail ...string) string {
		args := append(append(cmd, "--label", labelRun+"=sweep-test", "--label", labelPID+"="+pid), tail...)
		id, err := docker(ctx, nil, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	t.Cleanup(func() {
		for _, id := range made["container"] {
			docker(context.Background(), nil, nil, "rm", "-f", id)
		}
		for _, id := range made["network"] {
			docker(context.Background(), nil, nil, "network", "rm", id)
		}
	})
	netCreate := []string{"network", "create", "--internal"}
	deadNet := create(deadPID, netCreate, "cgmh-sweep-dead-"+live)
	liveNet := create(live, netCreate, "cgmh-sweep-live-"+live)
	made["network"] = []string{deadNet, liveNet}
	deadC := create(deadPID, []string{"create", "--network", "none"}, image, "true")
	liveC := create(live, []string{"create", "--network", "none"}, image, "true")
	made["container"] = []string{deadC, liveC}

	if err := sweep(ctx); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	for _, c := range []struct {
		kind, id string
		wantGone bool
	}{{"container", deadC, true}, {"container", liveC, false}, {"network", deadNet, true}, {"network", liveNet, false}} {
		_, err := docker(ctx, nil, nil, c.kind, "inspect", "--format", "{{.Id}}", c.id)
		if gone := err != nil; gone != c.wantGone {
			t.Errorf("%s %.12s (%s run): gone %t after sweep, want %t", c.kind, c.id, map[bool]string{true: "dead", false: "live"}[c.wantGone], gone, c.wantGone)
		}
	}
}
