package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/sandbox"
)

// The approvals policy judges a sandbox command on the program the sandbox
// would run, so argv[0] is resolved in the sandbox image's filesystem, not
// the host's. For each image the sidecar creates a container that never
// starts and asks the engine about the paths the resolver walks (HEAD
// /containers/{id}/archive: type, mode, link target), remembering every
// answer: an image's content never changes under its ID. Only the paths a
// lookup needs are asked for, whatever the image's size.
//
// The sandbox's root is read-only, so the image is what a command finds,
// except where something is mounted over it at run time: /tmp, /workspace,
// /dev, /sys, the engine's /etc files and the profile's mounts. Those are
// masked (approvals.ErrUnknownContent): a program there cannot be judged,
// and a PATH search stops at them, so a file dropped there cannot shadow
// the program that was judged. So does any path the engine cannot answer
// for.

// labelListing marks the never-started containers that answer for images.
const labelListing = "clawguard.listing"

const (
	maxImages     = 8     // images answered for at once, least recently used dropped
	maxImageStats = 20000 // answers remembered per image before starting over
	engineTimeout = 2 * time.Minute
)

// runtimeMounts are covered at run time in every sandbox (tmpfs, the
// workspace, the engine's /dev, /sys and /etc files).
var runtimeMounts = []string{"/tmp", sandbox.WorkspacePath, "/dev", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}

// lstater describes a path of a filesystem (a clean relative name, ""
// for the root) without following a final symlink; a symlink's link is
// where it points. Errors other than fs.ErrNotExist mean the path cannot be
// judged.
type lstater interface {
	lstat(ctx context.Context, name string) (treeNode, error)
}

type treeNode struct {
	mode fs.FileMode
	link string
}

// imageFiles answers for sandbox images through the engine.
type imageFiles struct {
	cli      *client.Client
	instance string

	mu     sync.Mutex
	images map[string]*imageSlot // by image ID
	clock  uint64
}

func newImageFiles(cli *client.Client, instance string) *imageFiles {
	return &imageFiles{cli: cli, instance: instance, images: map[string]*imageSlot{}}
}

// imageSlot answers for one image through its listing container.
type imageSlot struct {
	cli   *client.Client
	ready chan struct{}
	id    string // the container; "" when creating it failed
	err   error
	used  uint64

	mu    sync.Mutex
	stats map[string]treeNode // answers, fs.ModeIrregular|0 for "not there"
}

// resolver returns the resolver for a command of ctx in a sandbox of
// profile p.
func (f *imageFiles) resolver(ctx context.Context, p sandbox.Profile) (approvals.Resolver, error) {
	img, err := f.cli.ImageInspect(ctx, p.Image)
	if err != nil {
		return nil, fmt.Errorf("sandbox image %q: %w", p.Image, err)
	}
	s, err := f.slot(ctx, img.ID)
	if err != nil {
		return nil, fmt.Errorf("sandbox image %q: %w", p.Image, err)
	}
	mounts := append([]string(nil), runtimeMounts...)
	for _, m := range p.Mounts {
		mounts = append(mounts, m.Target)
	}
	v, err := maskMounts(ctx, s, mounts)
	if err != nil {
		return nil, fmt.Errorf("sandbox image %q: %w", p.Image, err)
	}
	return approvals.FSResolver{FS: v}, nil
}

// slot returns the image's slot, its container created once for all
// callers.
func (f *imageFiles) slot(ctx context.Context, imageID string) (*imageSlot, error) {
	f.mu.Lock()
	f.clock++
	s, ok := f.images[imageID]
	if !ok {
		s = &imageSlot{cli: f.cli, ready: make(chan struct{}), stats: map[string]treeNode{}}
		f.images[imageID] = s
		f.evictLocked()
		go f.create(imageID, s)
	}
	s.used = f.clock
	f.mu.Unlock()
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.err != nil {
		f.mu.Lock()
		if f.images[imageID] == s {
			delete(f.images, imageID) // the next request tries again
		}
		f.mu.Unlock()
		return nil, s.err
	}
	return s, nil
}

func (f *imageFiles) evictLocked() {
	for len(f.images) > maxImages {
		var oldest string
		for id, s := range f.images {
			if oldest == "" || s.used < f.images[oldest].used {
				oldest = id
			}
		}
		s := f.images[oldest]
		delete(f.images, oldest)
		go func() { <-s.ready; f.remove(s.id) }()
	}
}

// create makes the listing container, not bound to the request that asked
// first: others may be waiting for it.
func (f *imageFiles) create(imageID string, s *imageSlot) {
	defer close(s.ready)
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	c, err := f.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image: imageID,
			// Never started: a command is needed only for images without one.
			Cmd:             []string{"/clawguard-never-started"},
			NetworkDisabled: true,
			Labels:          map[string]string{labelListing: "1", sandbox.LabelInstance: f.instance},
		},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		s.err = fmt.Errorf("create a container to look up programs in: %w", err)
		return
	}
	s.id = c.ID
}

func (f *imageFiles) remove(id string) {
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
}

// removeLeftovers removes listing containers of this instance that a crash
// left behind.
func (f *imageFiles) removeLeftovers(ctx context.Context) error {
	res, err := f.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", labelListing+"=1", sandbox.LabelInstance+"="+f.instance),
	})
	if err != nil {
		return fmt.Errorf("list leftover listing containers: %w", err)
	}
	for _, c := range res.Items {
		f.remove(c.ID)
	}
	return nil
}

// close removes the listing containers.
func (f *imageFiles) close() {
	f.mu.Lock()
	slots := f.images
	f.images = map[string]*imageSlot{}
	f.mu.Unlock()
	for _, s := range slots {
		<-s.ready
		f.remove(s.id)
	}
}

// notThere marks a remembered "no such file".
const notThere = fs.ModeIrregular

func (s *imageSlot) lstat(ctx context.Context, name string) (treeNode, error) {
	s.mu.Lock()
	n, ok := s.stats[name]
	s.mu.Unlock()
	if !ok {
		res, err := s.cli.ContainerStatPath(ctx, s.id, client.ContainerStatPathOptions{Path: "/" + name})
		switch {
		case cerrdefs.IsNotFound(err):
			n = treeNode{mode: notThere}
		case err != nil:
			return treeNode{}, err
		default:
			n = treeNode{mode: res.Stat.Mode, link: res.Stat.LinkTarget}
		}
		s.mu.Lock()
		if len(s.stats) >= maxImageStats {
			s.stats = map[string]treeNode{}
		}
		s.stats[name] = n
		s.mu.Unlock()
	}
	if n.mode == notThere {
		return treeNode{}, fs.ErrNotExist
	}
	return n, nil
}

// realPath resolves the symlinks of the absolute path p in fsys, as the
// engine does for a mount's target; missing components are kept.
func realPath(ctx context.Context, fsys lstater, p string) (string, error) {
	parts := strings.Split(p, "/")
	cur := ""
	for links := 0; len(parts) > 0; {
		c := parts[0]
		parts = parts[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = strings.TrimPrefix(path.Dir("/"+cur), "/")
			continue
		}
		next := strings.TrimPrefix(cur+"/"+c, "/")
		n, err := fsys.lstat(ctx, next)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if n.mode&fs.ModeSymlink != 0 && links < 40 {
			links++
			if path.IsAbs(n.link) {
				cur = ""
			}
			parts = append(strings.Split(n.link, "/"), parts...)
			continue
		}
		cur = next
	}
	return cur, nil
}

// maskMounts returns fsys as the approvals resolver sees it, with the
// mount points (absolute paths, as given and with links resolved) and
// everything under them unknown.
func maskMounts(ctx context.Context, fsys lstater, mounts []string) (maskedFS, error) {
	m := maskedFS{ctx: ctx, fs: fsys}
	for _, p := range mounts {
		real, err := realPath(ctx, fsys, p)
		if err != nil {
			return maskedFS{}, fmt.Errorf("mount %s: %w", p, err)
		}
		m.masks = append(m.masks, strings.TrimPrefix(path.Clean("/"+p), "/"), real)
	}
	return m, nil
}

// maskedFS implements fs.ReadLinkFS for approvals.FSResolver.
type maskedFS struct {
	ctx   context.Context
	fs    lstater
	masks []string
}

func (m maskedFS) node(op, name string) (treeNode, error) {
	if name == "." {
		name = ""
	}
	for _, k := range m.masks {
		if k == "" || name == k || strings.HasPrefix(name, k+"/") {
			return treeNode{}, &fs.PathError{Op: op, Path: name, Err: approvals.ErrUnknownContent}
		}
	}
	n, err := m.fs.lstat(m.ctx, name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Unanswered is unknown: a PATH search must stop here.
		err = fmt.Errorf("%w (the engine did not answer: %v)", approvals.ErrUnknownContent, err)
	}
	if err != nil {
		return treeNode{}, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return n, nil
}

// Open is not supported: only names and modes are looked up.
func (m maskedFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: errors.ErrUnsupported}
}

// Lstat describes name without following a final symlink.
func (m maskedFS) Lstat(name string) (fs.FileInfo, error) {
	n, err := m.node("lstat", name)
	if err != nil {
		return nil, err
	}
	return treeInfo{name: path.Base(name), mode: n.mode}, nil
}

// ReadLink returns where the symlink name points.
func (m maskedFS) ReadLink(name string) (string, error) {
	n, err := m.node("readlink", name)
	if err != nil {
		return "", err
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: syscall.EINVAL}
	}
	return n.link, nil
}

type treeInfo struct {
	name string
	mode fs.FileMode
}

func (i treeInfo) Name() string       { return i.name }
func (i treeInfo) Size() int64        { return 0 }
func (i treeInfo) Mode() fs.FileMode  { return i.mode }
func (i treeInfo) ModTime() time.Time { return time.Time{} }
func (i treeInfo) IsDir() bool        { return i.mode.IsDir() }
func (i treeInfo) Sys() any           { return nil }

var (
	_ fs.ReadLinkFS = maskedFS{}
	_ fs.FileInfo   = treeInfo{}
	_ lstater       = (*imageSlot)(nil)
)
