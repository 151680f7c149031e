package sandbox

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
	"maps"
	"os"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

//go:embed busybox.Dockerfile
var busyboxDockerfile []byte

// DefaultBusybox is where Debian's busybox-static installs the static
// busybox that BusyboxImage builds from.
const DefaultBusybox = "/bin/busybox"

// BusyboxImage returns repo:<content hash> of a sandbox image made of the
// static busybox at path — its applets as symlinks in /bin, an
// unprivileged user, nothing else — building it first if this Docker host
// lacks it. No registry is needed. The image carries labels, so that who
// built it can find and remove it.
func BusyboxImage(ctx context.Context, cli *client.Client, repo, path string, labels map[string]string) (string, error) {
	bb, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("busybox image: %w (install Debian's busybox-static)", err)
	}
	if err := checkStatic(path); err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(busyboxDockerfile)
	h.Write(bb)
	ref := repo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("busybox image: inspect %s: %w", ref, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, busyboxDockerfile}, {"busybox", 0o755, bb}} {
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
		Tags:        []string{ref},
		Remove:      true,
		ForceRemove: true,
		Labels:      maps.Clone(labels),
	})
	if err != nil {
		return "", fmt.Errorf("busybox image: build: %w", err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var msg jsonstream.Message
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("busybox image: build output: %w", err)
		}
		if msg.Error != nil {
			return "", fmt.Errorf("busybox image: build: %s", msg.Error.Message)
		}
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("busybox image: built but not found: %w", err)
	}
	return ref, nil
}

// checkStatic refuses a dynamically linked busybox: on an empty base image
// it would not find its libraries.
func checkStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("busybox image: %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("busybox image: %s is dynamically linked; install Debian's busybox-static", p)
		}
	}
	return nil
}
