package sandboxtest

import (
	"context"
	_ "embed"
	"fmt"
	"os"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/moby/moby/client"
)

// BusyboxEnv overrides the path of the static busybox the image is built
// from (default /bin/busybox, Debian's busybox-static).
const BusyboxEnv = "CLAWGUARD_TEST_BUSYBOX"

// ImageRepo is the repository of the test image; the tag is a hash of its
// content, so an unchanged image is built once per Docker host.
const ImageRepo = "clawguard-sandbox-test"

// Image returns the reference of the busybox test image, building it from
// the host's static busybox if this Docker host does not have it yet.
func Image(ctx context.Context, cli *client.Client) (string, error) {
	bbPath := os.Getenv(BusyboxEnv)
	if bbPath == "" {
		bbPath = sandbox.DefaultBusybox
	}
	ref, err := sandbox.BusyboxImage(ctx, cli, ImageRepo, bbPath, map[string]string{"clawguard.test": "1"})
	if err != nil {
		return "", fmt.Errorf("test image: %w (or set %s)", err, BusyboxEnv)
	}
	return ref, nil
}
