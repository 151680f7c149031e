package approvals

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Resolver finds the program a target would execute for argv[0]. The host
// and sandboxes differ in their filesystem, so the caller supplies one per
// target.
type Resolver interface {
	// Resolve returns the absolute path, with every symlink resolved, of the
	// executable regular file that name denotes when it is run in directory
	// dir with the search path pathList (a colon-separated PATH value): a
	// name containing a slash is taken relative to dir; any other name is
	// looked up in pathList the way execvp and Go's exec.LookPath do.
	Resolve(name, dir, pathList string) (string, error)
}

// RootResolver resolves names inside a directory tree as if it were the
// root filesystem, as a sandbox sees its image: absolute symlinks and ".."
// stay inside Root, so a link cannot point the evaluation at a host file.
// Resolved paths are reported as the target sees them (relative to Root).
type RootResolver struct {
	// Root is the directory that is "/" for the target, e.g. an exported
	// image root filesystem or /proc/<pid>/root of a running container.
	Root string
}

// HostResolver resolves on the host's own filesystem.
func HostResolver() Resolver { return RootResolver{Root: "/"} }

// Resolve implements Resolver.
func (r RootResolver) Resolve(name, dir, pathList string) (string, error) {
	return FSResolver{FS: os.DirFS(r.Root).(fs.ReadLinkFS)}.Resolve(name, dir, pathList)
}

// FSResolver resolves names in a file tree that need not exist on disk,
// such as the listing of a sandbox image, with the same rules as
// RootResolver: the tree's root is "/", symlinks and ".." never leave it.
// FS is asked only for Lstat and ReadLink of slash-separated names
// relative to the root ("usr/bin/ls").
//
// A tree that cannot tell what lies at a path (a mount or tmpfs whose
// content appears only when the command runs) answers with an error
// wrapping ErrUnknownContent; a PATH search stops there rather than judge
// a program that a file in that directory would shadow.
type FSResolver struct {
	FS fs.ReadLinkFS
}

// ErrUnknownContent: the resolver cannot see what a path holds where the
// command will run.
var ErrUnknownContent = errors.New("its content is not known before the command runs")

// maxSymlinks matches Linux's MAXSYMLINKS: a deeper chain fails like ELOOP.
const maxSymlinks = 40

// Resolve implements Resolver.
func (r FSResolver) Resolve(name, dir, pathList string) (string, error) {
	if name == "" {
		return "", errors.New("empty program name")
	}
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			if !path.IsAbs(dir) {
				return "", fmt.Errorf("%s: relative program path needs an absolute working directory, got %q", name, dir)
			}
			p = path.Join(dir, p)
		}
		return r.executable(p)
	}
	if pathList == "" {
		return "", fmt.Errorf("%s: no PATH to look it up in", name)
	}
	var firstErr error
	for _, d := range strings.Split(pathList, ":") {
		if !path.IsAbs(d) {
			// execvp would search the working directory here and Go's
			// LookPath refuses the result: either way we cannot tell
			// for sure what runs, so refuse rather than guess.
			return "", fmt.Errorf("%s: PATH %q has the relative entry %q; refusing to guess which program runs", name, pathList, d)
		}
		p, err := r.executable(path.Join(d, name))
		if err == nil {
			return p, nil
		}
		if errors.Is(err, ErrUnknownContent) {
			return "", fmt.Errorf("%s: looking it up in PATH %q: %w", name, pathList, err)
		}
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", fmt.Errorf("%s: not found in PATH %q (%w)", name, pathList, firstErr)
	}
	return "", fmt.Errorf("%s: not found in PATH %q", name, pathList)
}

// executable resolves p and checks that it is a regular file with an
// execute bit, the test exec.LookPath applies.
func (r FSResolver) executable(p string) (string, error) {
	real, fi, err := r.realpath(p)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", real)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s: not executable", real)
	}
	return real, nil
}

// realpath resolves every symlink in the absolute path p component by
// component, the way the kernel does, but with the tree's root as "/".
func (r FSResolver) realpath(p string) (string, fs.FileInfo, error) {
	pending := strings.Split(p, "/")
	cur := "/"
	links := 0
	var fi fs.FileInfo
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		if next == "/proc" {
			// /proc/self/exe, /proc/<pid>/fd/N and friends are magic
			// links that mean something else in the process that execs.
			return "", nil, fmt.Errorf("%s: programs under /proc cannot be judged", p)
		}
		rel := next[1:]
		var err error
		fi, err = r.FS.Lstat(rel)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", p, unwrapPathError(err))
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			links++
			if links > maxSymlinks {
				return "", nil, fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			target, err := r.FS.ReadLink(rel)
			if err != nil {
				return "", nil, fmt.Errorf("%s: %w", p, unwrapPathError(err))
			}
			if path.IsAbs(target) {
				cur = "/"
			}
			pending = append(strings.Split(target, "/"), pending...)
			continue
		}
		if len(pending) > 0 && !fi.IsDir() && hasComponent(pending) {
			return "", nil, fmt.Errorf("%s: %s is not a directory", p, next)
		}
		cur = next
	}
	if fi == nil {
		return "", nil, fmt.Errorf("%s: is a directory", p)
	}
	if fi.IsDir() {
		return "", nil, fmt.Errorf("%s: is a directory", cur)
	}
	return cur, fi, nil
}

func hasComponent(parts []string) bool {
	for _, c := range parts {
		if c != "" && c != "." {
			return true
		}
	}
	return false
}

// unwrapPathError drops the tree's path from an *fs.PathError so a sandbox
// root's location does not leak into decisions.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

var (
	_ Resolver = RootResolver{}
	_ Resolver = FSResolver{}
)
