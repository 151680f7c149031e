package sandboxtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

//go:embed Dockerfile
var dockerfile []byte

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
		bbPath = "/bin/busybox"
	}
	bb, err := os.ReadFile(bbPath)
	if err != nil {
		return "", fmt.Errorf("test image: %w (install Debian's busybox-static, or set %s)", err, BusyboxEnv)
	}
	if err := checkStatic(bbPath); err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(dockerfile)
	h.Write(bb)
	ref := ImageRepo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("test image: inspect %s: %w", ref, err)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, dockerfile}, {"busybox", 0o755, bb}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags:           []string{ref},
		Remove:         true,
		ForceRemove:    true,
		NetworkMode:    "none",
		SuppressOutput: true,
		Labels:         map[string]string{"clawguard.test": "1"},
	})
	if err != nil {
		return "", fmt.Errorf("test image: build: %w", err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var msg jsonstream.Message
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("test image: build output: %w", err)
		}
		if msg.Error != nil {
			return "", fmt.Errorf("test image: build: %s", msg.Error.Message)
		}
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("test image: built but not found: %w", err)
	}
	return ref, nil
}

// checkStatic refuses a dynamically linked busybox: on an empty base image
// it would not find its libraries.
func checkStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("test image: %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("test image: %s is dynamically linked; install Debian's busybox-static (or set %s)", p, BusyboxEnv)
		}
	}
	return nil
}
