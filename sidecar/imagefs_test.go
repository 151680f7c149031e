package sidecar

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/sandbox/sandboxtest"
)

// treeMap is an in-memory lstater for the masking logic; TestApprovalsSandbox
// and BenchmarkImageLookup use the engine's answers.
type treeMap map[string]treeNode

func (t treeMap) lstat(_ context.Context, name string) (treeNode, error) {
	if n, ok := t[name]; ok {
		if n.mode == notThere {
			return treeNode{}, errors.New("engine unavailable")
		}
		return n, nil
	}
	return treeNode{}, fs.ErrNotExist
}

const dir, exe, link = fs.ModeDir | 0o755, fs.FileMode(0o755), fs.ModeSymlink | 0o777

// testTree is an image as the engine describes it (links point to their
// resolved target): busybox applets, /opt/tools reached through a link
// (the profile mounts /opt/tools), and a directory the engine fails on.
var testTree = treeMap{
	"": {mode: dir}, "bin": {mode: dir}, "usr": {mode: dir}, "usr/local": {mode: dir}, "usr/local/bin": {mode: dir},
	"tmp": {mode: dir}, "workspace": {mode: dir}, "dev": {mode: dir}, "usr/opt": {mode: dir}, "usr/opt/tools": {mode: dir},
	"bin/busybox":        {mode: exe},
	"bin/ls":             {mode: link, link: "/bin/busybox"},
	"bin/notes":          {mode: 0o644},
	"bin/to-tmp":         {mode: link, link: "/tmp/x"},
	"usr/local/bin/tool": {mode: exe},
	"opt":                {mode: link, link: "/usr/opt"},
	"usr/opt/tools/run":  {mode: exe},
	"dev/null":           {mode: fs.ModeDevice | fs.ModeCharDevice | 0o666},
	"broken":             {mode: notThere}, // the engine fails here
}

func TestImageMasks(t *testing.T) {
	m, err := maskMounts(t.Context(), testTree, append(runtimeMounts, "/opt/tools"))
	if err != nil {
		t.Fatal(err)
	}
	r := approvals.FSResolver{FS: m}
	unknown := approvals.ErrUnknownContent.Error()
	for _, c := range []struct {
		name, path, want, err string
	}{
		{name: "ls", path: "/usr/local/bin:/bin", want: "/bin/busybox"},
		{name: "tool", path: "/usr/local/bin", want: "/usr/local/bin/tool"},
		{name: "notes", path: "/bin", err: "not found"},
		{name: "/dev/null", err: unknown},
		{name: "ls", path: "/tmp:/bin", err: unknown},
		{name: "/bin/to-tmp", err: unknown},
		{name: "/workspace/tool", err: unknown},
		{name: "./tool", err: unknown}, // relative to the cwd, /workspace
		// The mount's target is reached through the /opt link: the mask
		// follows it, so the image's own file under it is not trusted.
		{name: "run", path: "/opt/tools", err: unknown},
		{name: "run", path: "/usr/opt/tools", err: unknown},
		// Where the engine cannot answer, the search stops rather than
		// going on to a later PATH entry.
		{name: "ls", path: "/broken:/bin", err: "the engine did not answer"},
	} {
		got, err := r.Resolve(c.name, "/workspace", c.path)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%s in %q: %q, %v; want %q", c.name, c.path, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s in %q: %q, %v; want an error with %q", c.name, c.path, got, err, c.err)
		}
	}
	if _, err := m.ReadLink("bin/busybox"); err == nil {
		t.Error("ReadLink of a regular file succeeded")
	}
	if _, err := m.Open("bin/busybox"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Open: %v", err)
	}
	// A mount on a link to the root hides everything: nothing is judged.
	all, err := maskMounts(t.Context(), treeMap{"": {mode: dir}, "bin": {mode: dir}, "bin/ls": {mode: exe}, "data": {mode: link, link: "/"}}, []string{"/data"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (approvals.FSResolver{FS: all}).Resolve("ls", "/", "/bin"); !errors.Is(err, approvals.ErrUnknownContent) {
		t.Errorf("mount over the root: %v", err)
	}
}

// BenchmarkImageLookup judges a command in the test image through the
// engine: the first lookup of an image (a listing container is created and
// each path asked once) and later ones (remembered answers, one image
// inspection). It needs Docker.
func BenchmarkImageLookup(b *testing.B) {
	cli := sandboxtest.Client(b)
	img := sandboxtest.TestImage(b, cli)
	p := sandbox.Profile{Image: img, Path: sandbox.DefaultPath}
	lookup := func(f *imageFiles) {
		r, err := f.resolver(context.Background(), p)
		if err == nil {
			_, err = r.Resolve("ls", "/workspace", p.Path)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("first", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			f := newImageFiles(cli, sandboxtest.Instance(b, cli))
			lookup(f)
			b.StopTimer()
			f.close()
			b.StartTimer()
		}
	})
	b.Run("remembered", func(b *testing.B) {
		f := newImageFiles(cli, sandboxtest.Instance(b, cli))
		defer f.close()
		lookup(f)
		for b.Loop() {
			lookup(f)
		}
	})
}
