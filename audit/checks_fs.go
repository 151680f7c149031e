package audit

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/clawguard/clawguard/vault"
)

// maxWalk bounds how many entries of the state directory are examined.
const maxWalk = 20000

// fileKind says which check a file of the state or config directory
// belongs to; each file is judged by exactly one.
type fileKind int

const (
	kindState fileKind = iota
	kindConfig
	kindVault
)

// vaultFiles are the vault's file and key, by base name.
var vaultFiles = []string{filepath.Base(vault.Path("")), "vault.key"}

// configFiles returns the config files that exist: the Caddy config, the
// sidecar and approvals files, and env files next to the Caddy config and
// in the state directory.
func (a *auditor) configFiles() []string {
	files, _ := a.cfgFiles.get(a.findConfigFiles)
	return files
}

func (a *auditor) findConfigFiles() ([]string, error) {
	var out []string
	for _, p := range []string{a.opts.Config, a.opts.SidecarConfig, a.opts.Approvals} {
		if p != "" && exists(p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, p := range a.envFiles() {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// envFiles lists ".env" and "*.env" in the config and state directories.
func (a *auditor) envFiles() []string {
	var out []string
	for _, dir := range a.dirs() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			n := e.Name()
			if n == ".env" || strings.HasSuffix(n, ".env") {
				p := filepath.Join(dir, n)
				if !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// dirs returns the config directory (if any) and the state directory:
// the only places --fix may change.
func (a *auditor) dirs() []string {
	var out []string
	if d := a.configDir(); d != "" {
		out = append(out, d)
	}
	if !slices.Contains(out, a.opts.StateDir) {
		out = append(out, a.opts.StateDir)
	}
	return out
}

// kindOf classifies a path of the state or config directory.
func (a *auditor) kindOf(p string) fileKind {
	if filepath.Dir(p) == a.opts.StateDir && slices.Contains(vaultFiles, filepath.Base(p)) {
		return kindVault
	}
	if slices.Contains(a.configFiles(), p) {
		return kindConfig
	}
	return kindState
}

// permFinding judges one file or directory: symlinks, foreign owners and
// group or other access. strict decides whether mere read access by others
// is critical (keys) or a warning.
func permFinding(path string, fi fs.FileInfo, strict bool, what string) *Finding {
	mode := fi.Mode()
	if mode&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(path)
		return &Finding{Severity: SeverityWarn, Path: path,
			Finding: fmt.Sprintf("%s is a symlink to %q; clawguard expects a regular file here and --fix never follows links", what, target),
			Remedy:  "replace the link with the file itself (mode 0600)"}
	}
	if f := ownerFinding(path, fi, what); f != nil {
		return f
	}
	perm := mode.Perm()
	open := perm & 0o077
	if open == 0 {
		return nil
	}
	want := perm &^ 0o077
	f := &Finding{Path: path, Severity: SeverityWarn,
		Remedy: fmt.Sprintf("chmod %04o %s", want, path),
		fix:    &chmodAction{path: path, from: perm, to: want}}
	switch {
	case perm&0o022 != 0:
		f.Severity = SeverityCritical
		f.Finding = fmt.Sprintf("%s is mode %04o: group or others can write it", what, perm)
	case strict:
		f.Severity = SeverityCritical
		f.Finding = fmt.Sprintf("%s is mode %04o: group or others can read it", what, perm)
	default:
		f.Finding = fmt.Sprintf("%s is mode %04o: group or others can read it", what, perm)
	}
	if mode.Type() == fs.ModeSocket && f.Severity == SeverityCritical && perm&0o022 != 0 {
		// The sidecar also checks each peer's UID, so an open socket is a
		// missing layer rather than an open door.
		f.Severity = SeverityWarn
	}
	if !ownedBySelf(fi) {
		f.fix = nil
		f.Remedy += " (as the file's owner or root)"
	}
	return f
}

// ownerFinding flags a file owned by another user than this one or root:
// that user can change it whatever its mode.
func ownerFinding(path string, fi fs.FileInfo, what string) *Finding {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	uid := int(st.Uid)
	if uid == 0 || uid == os.Geteuid() {
		return nil
	}
	return &Finding{Severity: SeverityWarn, Path: path,
		Finding: fmt.Sprintf("%s is owned by uid %d, not by this user (uid %d) or root: that user can change it", what, uid, os.Geteuid()),
		Remedy:  fmt.Sprintf("chown %d %s (as root), or run clawguard as uid %d", os.Geteuid(), path, uid)}
}

// ownedBySelf reports whether this process may chmod the file.
func ownedBySelf(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Geteuid() || os.Geteuid() == 0
}

func checkConfigPerms(_ context.Context, a *auditor) ([]Finding, error) {
	var out []Finding
	files := a.configFiles()
	if len(files) == 0 {
		return nil, skip("no config files found")
	}
	for _, p := range files {
		if a.kindOf(p) != kindConfig {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return out, err
		}
		if f := permFinding(p, fi, false, "config file "+filepath.Base(p)); f != nil {
			out = append(out, *f)
		}
	}
	if d := a.configDir(); d != "" && d != a.opts.StateDir {
		if f := configDirFinding(d); f != nil {
			out = append(out, *f)
		}
	}
	return out, nil
}

// configDirFinding flags a config directory others can write: they could
// replace the config or plant files it imports. It is not fixed: the
// directory may be shared (/etc/caddy, a home directory).
func configDirFinding(dir string) *Finding {
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm()&0o022 == 0 {
		return nil
	}
	f := &Finding{Severity: SeverityCritical, Path: dir,
		Finding: fmt.Sprintf("the config directory is mode %04o: group or others can replace the config", fi.Mode().Perm()),
		Remedy:  "move the config to a directory only its owner can write, or chmod go-w " + dir}
	if fi.Mode()&fs.ModeSticky != 0 {
		f.Severity = SeverityWarn
		f.Finding = fmt.Sprintf("the config directory is mode %04o (sticky): others cannot replace the config but can add files next to it", fi.Mode().Perm()|0o1000)
	}
	return f
}

// walkState visits the state directory without following symlinks and
// without entering the sandbox workspaces (their modes belong to the
// sandboxes). fn gets absolute paths.
func (a *auditor) walkState(fn func(path string, fi fs.FileInfo) error) error {
	root, err := os.OpenRoot(a.opts.StateDir)
	if err != nil {
		return err
	}
	defer root.Close()
	workspaces := a.workspaceRoot()
	n := 0
	return fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			if rel == "." {
				return err
			}
			return nil // vanished or unreadable: nothing to judge
		}
		if n++; n > maxWalk {
			return fs.SkipAll
		}
		p := filepath.Join(a.opts.StateDir, rel)
		fi, err := root.Lstat(rel)
		if err != nil {
			return nil
		}
		if err := fn(p, fi); err != nil {
			return err
		}
		if d.IsDir() && p == workspaces {
			return fs.SkipDir
		}
		return nil
	})
}

func checkStateDirPerms(_ context.Context, a *auditor) ([]Finding, error) {
	if _, err := os.Lstat(a.opts.StateDir); notExist(err) {
		return nil, skip("the state directory does not exist yet")
	}
	var out []Finding
	err := a.walkState(func(p string, fi fs.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		what := "state directory " + p
		if p != a.opts.StateDir {
			what = "directory " + p
		}
		if f := permFinding(p, fi, false, what); f != nil {
			out = append(out, *f)
		}
		return nil
	})
	return out, err
}

func checkStateFilePerms(_ context.Context, a *auditor) ([]Finding, error) {
	if _, err := os.Lstat(a.opts.StateDir); notExist(err) {
		return nil, skip("the state directory does not exist yet")
	}
	var out []Finding
	err := a.walkState(func(p string, fi fs.FileInfo) error {
		if fi.IsDir() || a.kindOf(p) != kindState {
			return nil
		}
		if f := permFinding(p, fi, false, "state file "+p); f != nil {
			out = append(out, *f)
		}
		return nil
	})
	return out, err
}

func checkVaultPerms(_ context.Context, a *auditor) ([]Finding, error) {
	var out []Finding
	seen := false
	for _, name := range vaultFiles {
		p := filepath.Join(a.opts.StateDir, name)
		fi, err := os.Lstat(p)
		if notExist(err) {
			continue
		}
		if err != nil {
			return out, err
		}
		seen = true
		// The key (with the machine identity) opens every entry: reading
		// it is as bad as reading the secrets.
		if f := permFinding(p, fi, name == "vault.key", "vault "+name); f != nil {
			out = append(out, *f)
		}
	}
	if !seen {
		return nil, skip("no vault yet")
	}
	return out, nil
}
