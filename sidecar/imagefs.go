package sidecar

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/sandbox"
)

// The approvals policy judges a sandbox command on the program the sandbox
// would run, so argv[0] is resolved in the sandbox image's filesystem, not
// the host's. The sidecar lists an image's files once (a container is
// created, never started, and exported: only names, modes and link targets
// are kept, in memory) and resolves in that listing. The sandbox's root is
// read-only, so the listing is what a command finds, except where something
// is mounted over it: /tmp, /workspace, /dev, /sys and the profile's
// mounts, whose content appears only at run time. Those are masked
// (approvals.ErrUnknownContent): a program there cannot be judged and a
// PATH search stops at them, so a file dropped there cannot shadow the
// program that was judged.

// labelExport marks the short-lived containers made to list an image.
const labelExport = "clawguard.export"

// Bounds of an image listing.
const (
	maxTreeEntries = 1 << 21
	maxImageTrees  = 8 // listings kept, least recently used dropped
	exportTimeout  = 2 * time.Minute
)

// runtimeMounts are covered at run time in every sandbox (tmpfs, the
// workspace, the engine's /dev and /sys).
var runtimeMounts = []string{"/tmp", sandbox.WorkspacePath, "/dev", "/sys"}

// imageTrees lists sandbox images and caches the listings by image ID.
type imageTrees struct {
	cli      *client.Client
	instance string

	mu    sync.Mutex
	trees map[string]*treeSlot
	clock uint64
}

type treeSlot struct {
	ready chan struct{}
	tree  *imageTree
	err   error
	used  uint64
}

func newImageTrees(cli *client.Client, instance string) *imageTrees {
	return &imageTrees{cli: cli, instance: instance, trees: map[string]*treeSlot{}}
}

// resolver returns the resolver for commands in sandboxes of profile p.
func (it *imageTrees) resolver(ctx context.Context, p sandbox.Profile) (approvals.Resolver, error) {
	img, err := it.cli.ImageInspect(ctx, p.Image)
	if err != nil {
		return nil, fmt.Errorf("sandbox image %q: %w", p.Image, err)
	}
	tree, err := it.tree(ctx, img.ID)
	if err != nil {
		return nil, fmt.Errorf("sandbox image %q: %w", p.Image, err)
	}
	mounts := append([]string(nil), runtimeMounts...)
	for _, m := range p.Mounts {
		mounts = append(mounts, m.Target)
	}
	return approvals.FSResolver{FS: tree.masked(mounts)}, nil
}

// tree returns the listing of image id, making it once for concurrent
// callers.
func (it *imageTrees) tree(ctx context.Context, id string) (*imageTree, error) {
	it.mu.Lock()
	it.clock++
	s, ok := it.trees[id]
	if !ok {
		s = &treeSlot{ready: make(chan struct{})}
		it.trees[id] = s
		it.evictLocked()
		go it.fill(id, s)
	}
	s.used = it.clock
	it.mu.Unlock()
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.err != nil {
		it.mu.Lock()
		if it.trees[id] == s {
			delete(it.trees, id) // let the next request try again
		}
		it.mu.Unlock()
	}
	return s.tree, s.err
}

func (it *imageTrees) evictLocked() {
	for len(it.trees) > maxImageTrees {
		var oldest string
		for id, s := range it.trees {
			if oldest == "" || s.used < it.trees[oldest].used {
				oldest = id
			}
		}
		delete(it.trees, oldest)
	}
}

// fill lists the image, not bound to the request that asked first: others
// may be waiting for the same listing.
func (it *imageTrees) fill(id string, s *treeSlot) {
	defer close(s.ready)
	ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
	defer cancel()
	s.tree, s.err = it.export(ctx, id)
}

func (it *imageTrees) export(ctx context.Context, id string) (*imageTree, error) {
	c, err := it.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image: id,
			// Never started: a command is needed only for images without one.
			Cmd:             []string{"/clawguard-never-started"},
			NetworkDisabled: true,
			Labels:          map[string]string{labelExport: "1", sandbox.LabelInstance: it.instance},
		},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return nil, fmt.Errorf("list files: create container: %w", err)
	}
	defer it.remove(c.ID)
	rc, err := it.cli.ContainerExport(ctx, c.ID, client.ContainerExportOptions{})
	if err != nil {
		return nil, fmt.Errorf("list files: export: %w", err)
	}
	defer rc.Close()
	return readTree(rc)
}

func (it *imageTrees) remove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
}

// removeLeftovers removes listing containers of this instance that a crash
// left behind.
func (it *imageTrees) removeLeftovers(ctx context.Context) error {
	res, err := it.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", labelExport+"=1", sandbox.LabelInstance+"="+it.instance),
	})
	if err != nil {
		return fmt.Errorf("list leftover image listing containers: %w", err)
	}
	for _, c := range res.Items {
		it.remove(c.ID)
	}
	return nil
}

// imageTree is an image's file listing: clean relative paths ("bin/ls")
// to their type, permissions and link target. "" is the root.
type imageTree struct {
	nodes map[string]treeNode
}

type treeNode struct {
	mode fs.FileMode
	link string // symlink target
}

// readTree reads a tar stream's headers into a tree. Names are cleaned
// inside the root; hard links take their target's mode; parents missing
// from the stream are directories.
func readTree(r io.Reader) (*imageTree, error) {
	t := &imageTree{nodes: map[string]treeNode{"": {mode: fs.ModeDir | 0o755}}}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list files: read the image's tar stream: %w", err)
		}
		if len(t.nodes) >= maxTreeEntries {
			return nil, fmt.Errorf("list files: more than %d entries", maxTreeEntries)
		}
		name := cleanRel(h.Name)
		if name == "" {
			continue
		}
		n := treeNode{mode: fs.FileMode(h.Mode) & fs.ModePerm}
		switch h.Typeflag {
		case tar.TypeDir:
			n.mode |= fs.ModeDir
		case tar.TypeSymlink:
			n.mode, n.link = fs.ModeSymlink|0o777, h.Linkname
		case tar.TypeLink:
			target, ok := t.nodes[cleanRel(h.Linkname)]
			if !ok || target.mode.Type() != 0 {
				continue // a link to nothing known, or to a non-file: nothing to run
			}
			n.mode = target.mode
		case tar.TypeReg:
		default:
			n.mode |= fs.ModeIrregular // devices, fifos: never programs
		}
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := t.nodes[dir]; ok {
				break
			}
			t.nodes[dir] = treeNode{mode: fs.ModeDir | 0o755}
		}
		t.nodes[name] = n
	}
}

func cleanRel(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// realPath resolves the symlinks of the absolute path p in the tree, as
// the engine does for a mount's target; missing components are kept.
func (t *imageTree) realPath(p string) string {
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
		if n := t.nodes[next]; n.mode&fs.ModeSymlink != 0 && links < 40 {
			links++
			if path.IsAbs(n.link) {
				cur = ""
			}
			parts = append(strings.Split(n.link, "/"), parts...)
			continue
		}
		cur = next
	}
	return cur
}

// masked returns the tree as the approvals resolver sees it, with the
// given mount points (absolute paths) and everything under them unknown.
func (t *imageTree) masked(mounts []string) maskedTree {
	m := maskedTree{t: t}
	for _, p := range mounts {
		m.masks = append(m.masks, cleanRel(p), t.realPath(p))
	}
	return m
}

// maskedTree is an imageTree with mount points masked; it implements
// fs.ReadLinkFS for approvals.FSResolver.
type maskedTree struct {
	t     *imageTree
	masks []string
}

func (m maskedTree) node(op, name string) (treeNode, error) {
	for _, k := range m.masks {
		if k == "" || name == k || strings.HasPrefix(name, k+"/") {
			return treeNode{}, &fs.PathError{Op: op, Path: name, Err: approvals.ErrUnknownContent}
		}
	}
	if name == "." {
		name = ""
	}
	n, ok := m.t.nodes[name]
	if !ok {
		return treeNode{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return n, nil
}

// Open is not supported: only names and modes are listed.
func (m maskedTree) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: errors.ErrUnsupported}
}

// Lstat describes name without following a final symlink.
func (m maskedTree) Lstat(name string) (fs.FileInfo, error) {
	n, err := m.node("lstat", name)
	if err != nil {
		return nil, err
	}
	return treeInfo{name: path.Base(name), mode: n.mode}, nil
}

// ReadLink returns the target of the symlink name.
func (m maskedTree) ReadLink(name string) (string, error) {
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
	_ fs.ReadLinkFS = maskedTree{}
	_ fs.FileInfo   = treeInfo{}
)
