package sandboxtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawguard/clawguard/sandbox"
)

// Client returns a Docker client for the engine of DOCKER_HOST, closed when
// the test ends. It fails the test when the engine is not reachable: the
// sandbox tests run against the real engine and never skip.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := sandbox.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Fatalf("Docker Engine not reachable at %s (these tests need it; set DOCKER_HOST): %v", cli.DaemonHost(), err)
	}
	return cli
}

// TestImage builds (once per Docker host) and returns the test image. It
// also builds the exec agent (once per test binary, see Agent) and exports
// CLAWGUARD_AGENT, which the sandbox managers and sidecar processes the
// test starts then use.
func TestImage(t testing.TB, cli *client.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := Agent(ctx); err != nil {
		t.Fatal(err)
	}
	ref, err := Image(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// Instance returns a fresh sandbox instance name for this test. When the
// test ends (after the test's own cleanups, which should shut its managers
// down), every container still labelled with it is a leak: the test fails
// and the containers are removed.
func Instance(t testing.TB, cli *client.Client) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	inst := "t" + hex.EncodeToString(b)
	t.Cleanup(func() {
		left := Containers(t, cli, inst)
		if len(left) > 0 {
			t.Errorf("leaked sandbox containers of instance %s: %s", inst, strings.Join(left, ", "))
			RemoveAll(t, cli, inst)
		}
	})
	return inst
}

// Containers lists the IDs of all containers (running or not) of instance.
func Containers(t testing.TB, cli *client.Client, instance string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", sandbox.LabelInstance+"="+instance),
	})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	ids := make([]string, 0, len(res.Items))
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

// RemoveAll force-removes every container of instance.
func RemoveAll(t testing.TB, cli *client.Client, instance string) {
	t.Helper()
	for _, id := range Containers(t, cli, instance) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("remove %s: %v", id, err)
		}
		cancel()
	}
}
