package approvals

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// maskedFS is a tree whose "tmp" directory is a mount the resolver cannot
// see into.
type maskedFS struct{ fstest.MapFS }

func (m maskedFS) Lstat(name string) (fs.FileInfo, error) {
	if name == "tmp" || strings.HasPrefix(name, "tmp/") {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: ErrUnknownContent}
	}
	return m.MapFS.Lstat(name)
}

// TestFSResolver resolves in a tree that exists only in memory, like the
// listing of a sandbox image: links stay inside it, and a PATH entry whose
// content is unknown stops the search instead of being skipped.
func TestFSResolver(t *testing.T) {
	tree := maskedFS{fstest.MapFS{
		"bin/busybox":    {Mode: 0o755},
		"bin/ls":         {Mode: fs.ModeSymlink | 0o777, Data: []byte("busybox")},
		"bin/abs":        {Mode: fs.ModeSymlink | 0o777, Data: []byte("/../../usr/bin/tool")},
		"bin/data":       {Mode: 0o644},
		"usr/bin/tool":   {Mode: 0o755},
		"usr/local/bin":  {Mode: fs.ModeDir | 0o755},
		"bin/into-tmp":   {Mode: fs.ModeSymlink | 0o777, Data: []byte("/tmp/x")},
		"workspace/tool": {Mode: 0o755},
	}}
	r := FSResolver{FS: tree}
	for _, c := range []struct {
		name, dir, path, want, err string
	}{
		{name: "ls", path: "/usr/local/bin:/bin", want: "/bin/busybox"},
		{name: "abs", path: "/bin", want: "/usr/bin/tool"},
		{name: "./tool", dir: "/workspace", want: "/workspace/tool"},
		{name: "data", path: "/bin", err: "not found in PATH"},
		{name: "ls", path: "/tmp:/bin", err: ErrUnknownContent.Error()},
		{name: "tool", path: "/usr/bin:/tmp", want: "/usr/bin/tool"}, // found before the unknown entry
		{name: "/bin/into-tmp", err: ErrUnknownContent.Error()},
		{name: "ls", path: "bin", err: "relative entry"},
	} {
		got, err := r.Resolve(c.name, c.dir, c.path)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%s in %q: %q, %v; want %q", c.name, c.path, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s in %q: %q, %v; want an error containing %q", c.name, c.path, got, err, c.err)
		case c.err == ErrUnknownContent.Error() && !errors.Is(err, ErrUnknownContent):
			t.Errorf("%s: %v does not wrap ErrUnknownContent", c.name, err)
		}
	}
}
