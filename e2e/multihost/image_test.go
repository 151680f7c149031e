package multihost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
)

// imageRepo is the repository of the test image; its tag is a hash of the
// image's content.
const imageRepo = "clawguard-multihost"

// programs are the module's programs in the image, built static.
var programs = []string{"../../cmd/clawguard", "../../internal/cmd/tailnet-lab", "../../internal/cmd/openclaw-double"}

// buildImage compiles the programs into dir and builds the image from them,
// the host's static busybox and image.Dockerfile, unless this engine has
// it already. It returns the image reference and whether this call built
// it (then the caller removes it).
func buildImage(ctx context.Context, dir string) (ref string, built bool, err error) {
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-o", dir + "/"}, programs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	// Static: the image has no C library.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("building the image's programs: go %v: %w\n%s", args, err, out)
	}
	bb := os.Getenv(sandboxtest.BusyboxEnv)
	if bb == "" {
		bb = sandbox.DefaultBusybox
	}
	files := [][2]string{{"Dockerfile", "image.Dockerfile"}, {"busybox", bb}}
	for _, p := range programs {
		files = append(files, [2]string{filepath.Base(p), filepath.Join(dir, filepath.Base(p))})
	}
	h := sha256.New()
	for _, f := range files {
		if err := copyInto(h, dir, f[0], f[1]); err != nil {
			return "", false, fmt.Errorf("test image: %w (install Debian's busybox-static or set %s)", err, sandboxtest.BusyboxEnv)
		}
	}
	ref = imageRepo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := docker(ctx, nil, nil, "image", "inspect", "--format", "{{.Id}}", ref); err == nil {
		return ref, false, nil
	}
	if _, err := docker(ctx, nil, nil, "build", "-q", "-t", ref, "--label", labelRun+"=image",
		"--label", labelPID+"="+strconv.Itoa(os.Getpid()), dir); err != nil {
		return "", false, fmt.Errorf("test image: %w", err)
	}
	return ref, true, nil
}

// copyInto puts src into dir as name (unless it is there already) and adds
// name and the content to h.
func copyInto(h io.Writer, dir, name, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fmt.Fprintf(h, "%s\x00", name)
	dst := filepath.Join(dir, name)
	if dst == src {
		_, err = io.Copy(h, in)
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.MultiWriter(h, out), in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
