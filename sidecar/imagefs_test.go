package sidecar

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/approvals"
)

type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
}

func makeTar(t testing.TB, entries []tarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode}); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// testImage is a listing like an exported image: busybox applets as links,
// a hard link, a device, hostile names, and /opt/tools reached through a
// link (the profile mounts /opt/tools).
var testImage = []tarEntry{
	{name: "bin/", typ: tar.TypeDir, mode: 0o755},
	{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755},
	{name: "bin/ls", typ: tar.TypeSymlink, link: "busybox"},
	{name: "bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox"},
	{name: "bin/hard", typ: tar.TypeLink, link: "bin/busybox"},
	{name: "bin/notes", typ: tar.TypeReg, mode: 0o644},
	{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
	{name: "../../escape", typ: tar.TypeReg, mode: 0o755},
	{name: "usr/local/bin/tool", typ: tar.TypeReg, mode: 0o755},
	{name: "opt", typ: tar.TypeSymlink, link: "usr/opt"},
	{name: "usr/opt/tools/run", typ: tar.TypeReg, mode: 0o755},
	{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	{name: "bin/to-tmp", typ: tar.TypeSymlink, link: "../tmp/x"},
}

func TestImageTreeResolve(t *testing.T) {
	tree, err := readTree(bytes.NewReader(makeTar(t, testImage)))
	if err != nil {
		t.Fatal(err)
	}
	r := approvals.FSResolver{FS: tree.masked(append(runtimeMounts, "/opt/tools"))}
	for _, c := range []struct {
		name, path, want, err string
	}{
		{name: "ls", path: "/usr/local/bin:/bin", want: "/bin/busybox"},
		{name: "sh", path: "/bin", want: "/bin/busybox"},
		{name: "hard", path: "/bin", want: "/bin/hard"},
		{name: "tool", path: "/usr/local/bin", want: "/usr/local/bin/tool"},
		{name: "escape", path: "/", want: "/escape"}, // ../ cannot leave the root
		{name: "notes", path: "/bin", err: "not found"},
		{name: "/dev/null", err: approvals.ErrUnknownContent.Error()},
		{name: "ls", path: "/tmp:/bin", err: approvals.ErrUnknownContent.Error()},
		{name: "/bin/to-tmp", err: approvals.ErrUnknownContent.Error()},
		// The mount's target is reached through the /opt link: the mask
		// follows it, so the image's own file under it is not trusted.
		{name: "run", path: "/opt/tools", err: approvals.ErrUnknownContent.Error()},
		{name: "run", path: "/usr/opt/tools", err: approvals.ErrUnknownContent.Error()},
		{name: "/workspace/tool", err: approvals.ErrUnknownContent.Error()},
	} {
		got, err := r.Resolve(c.name, "/workspace", c.path)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%s in %q: %q, %v; want %q", c.name, c.path, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s in %q: %q, %v; want an error with %q", c.name, c.path, got, err, c.err)
		}
	}
	if _, err := tree.masked(nil).ReadLink("bin/busybox"); err == nil {
		t.Error("ReadLink of a regular file succeeded")
	}
	if _, err := tree.masked(nil).Open("bin/busybox"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Open: %v", err)
	}
}

func FuzzReadTree(f *testing.F) {
	f.Add(makeTar(f, testImage))
	f.Add([]byte{})
	f.Add(makeTar(f, []tarEntry{{name: "a", typ: tar.TypeSymlink, link: "a"}, {name: "b", typ: tar.TypeLink, link: "a"}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := readTree(bytes.NewReader(data))
		if err != nil {
			return
		}
		m := tree.masked([]string{"/tmp"})
		for name, n := range tree.nodes {
			if strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") || name != cleanRel(name) {
				t.Fatalf("unclean name %q in the tree", name)
			}
			if name == "" {
				continue
			}
			if _, err := m.Lstat(name); err != nil && !errors.Is(err, approvals.ErrUnknownContent) {
				t.Fatalf("Lstat(%q) of a listed name: %v", name, err)
			}
			if n.mode&fs.ModeSymlink != 0 {
				if _, err := m.ReadLink(name); err != nil && !errors.Is(err, approvals.ErrUnknownContent) {
					t.Fatalf("ReadLink(%q): %v", name, err)
				}
			}
		}
		// Resolution in any tree ends (link loops are bounded).
		approvals.FSResolver{FS: m}.Resolve("x", "/", "/:/bin:/a")
	})
}
