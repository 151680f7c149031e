package sidecar

import (
	"context"
	"fmt"
	"os"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/sandbox"
)

// ImageResolver resolves programs the way the approvals engine does for a
// sandbox of profile p (its image and mounts): in the local image's
// filesystem, asked of the Docker Engine through a container that never
// starts, with what is mounted at run time (/tmp, /workspace, /dev, /sys,
// the engine's /etc files, p's mounts) unknown. It is for `clawguard
// approvals check --image`; close removes the container. The image must be
// on this Docker host (nothing is pulled).
func ImageResolver(ctx context.Context, p sandbox.Profile) (r approvals.Resolver, close func(), err error) {
	cli, err := sandbox.NewClient()
	if err != nil {
		return nil, nil, err
	}
	// An instance of its own: a sidecar's leftover sweep never takes it,
	// and it never takes a sidecar's.
	f := newImageFiles(cli, fmt.Sprintf("cgcheck%d", os.Getpid()))
	close = func() { f.close(); cli.Close() }
	if r, err = f.resolver(ctx, p); err != nil {
		close()
		return nil, nil, err
	}
	return r, close, nil
}
