package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/wire"
)

// specialBits are kept by every chmod: dropping a sticky bit would loosen
// a directory.
const specialBits = fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// Apply carries out the plan: secrets into the vault, then each rewrite
// (backup first, then an atomic replace keeping owner and tightening the
// mode), then each chmod. Changes are confined to the config and state
// directories and never follow a symlink. A step that fails leaves its file
// as it was; the others still run.
func (p *FixPlan) Apply(ctx context.Context) *FixReport {
	rep := &FixReport{Applied: true, Steps: slices.Clone(p.steps)}
	stored := map[string]bool{}
	for _, rw := range p.rewrites {
		if ctx.Err() != nil {
			break
		}
		ok := true
		for i := range rep.Steps {
			s := &rep.Steps[i]
			if s.Action != StepStoreSecret || s.Path != rw.path || s.Status != StatusPlanned {
				continue
			}
			value := p.valueOf(s.Entry, rw)
			switch {
			case s.Reused || stored[value]:
				s.Status = StatusUnchanged
			default:
				if err := p.vault.Set(s.Entry, []byte(value)); err != nil {
					s.Status, s.Error, ok = StatusFailed, err.Error(), false
					continue
				}
				stored[value] = true
				s.Status = StatusDone
			}
		}
		s := &rep.Steps[rw.step]
		if !ok {
			s.Status, s.Error = StatusFailed, "a secret could not be stored in the vault; the file was left as it was"
			continue
		}
		backup, err := p.replaceFile(rw)
		s.Backup = backup
		if err != nil {
			s.Status, s.Error = StatusFailed, err.Error()
			continue
		}
		s.Status = StatusDone
	}
	for i := range rep.Steps {
		s := &rep.Steps[i]
		if s.Action != StepChmod || s.Status != StatusPlanned {
			continue
		}
		if ctx.Err() != nil {
			s.Status, s.Error = StatusFailed, ctx.Err().Error()
			continue
		}
		changed, err := p.tighten(s.Path)
		switch {
		case errors.Is(err, errSymlink):
			s.Status, s.Error = StatusRefused, err.Error()
		case err != nil:
			s.Status, s.Error = StatusFailed, err.Error()
		case changed:
			s.Status = StatusDone
		default:
			s.Status = StatusUnchanged
		}
	}
	return rep
}

// valueOf finds the secret of rw that goes to entry.
func (p *FixPlan) valueOf(entry string, rw *rewrite) string {
	for _, v := range rw.secrets {
		if p.entries[v] == entry {
			return v
		}
	}
	return ""
}

var errSymlink = errors.New("is a symlink; --fix never follows links")

// replaceFile writes rw's backup, then replaces the file atomically with
// its new content, keeping its owner and removing group and other access.
// It refuses when the file changed since it was planned.
func (p *FixPlan) replaceFile(rw *rewrite) (backup string, err error) {
	fi, err := os.Lstat(rw.path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s %w", rw.path, errSymlink)
	}
	cur, err := readBounded(rw.path)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(cur, rw.old) {
		return "", fmt.Errorf("%s changed since the plan was made; run the audit again", rw.path)
	}
	if backup, err = p.writeBackup(rw); err != nil {
		return "", err
	}
	if err := statedir.WriteFile(rw.path, rw.new); err != nil {
		return backup, err
	}
	// WriteFile made it 0600 and ours; make it the old mode minus group
	// and other bits (never more than it was), and the old owner's.
	if err := os.Chmod(rw.path, fi.Mode()&specialBits|fi.Mode().Perm()&^0o077); err != nil {
		return backup, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		if err := os.Lchown(rw.path, int(st.Uid), int(st.Gid)); err != nil {
			return backup, fmt.Errorf("restoring the owner of %s: %w", rw.path, err)
		}
	}
	return backup, nil
}

// writeBackup saves rw's backup (mode 0600) in <state_dir>/backups, named
// after the file and the plan's time.
func (p *FixPlan) writeBackup(rw *rewrite) (string, error) {
	dir := filepath.Join(p.opts.StateDir, wire.DirBackups)
	if fi, err := os.Lstat(dir); err == nil {
		if !fi.IsDir() {
			return "", fmt.Errorf("backup directory %s is not a directory (a symlink?)", dir)
		}
	} else if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("backup directory: %w", err)
	}
	base := fmt.Sprintf("%s.%s", filepath.Base(rw.path), p.now.Format("20060102T150405Z"))
	name := base
	for i := 2; exists(filepath.Join(dir, name)); i++ {
		name = fmt.Sprintf("%s.%d", base, i)
	}
	path := filepath.Join(dir, name)
	return path, statedir.WriteFile(path, rw.backup)
}

// tighten removes group and other bits from path, through an os.Root of
// the config or state directory holding it, so neither a symlink in the
// path nor one swapped in meanwhile can lead outside them.
func (p *FixPlan) tighten(path string) (bool, error) {
	base, rel := "", ""
	for _, d := range (&auditor{opts: p.opts}).dirs() {
		r, err := filepath.Rel(d, path)
		if err == nil && filepath.IsLocal(r) && (base == "" || len(d) > len(base)) {
			base, rel = d, r
		}
		if path == d {
			base, rel = d, "."
		}
	}
	if base == "" {
		return false, fmt.Errorf("%s is outside the config and state directories", path)
	}
	root, err := os.OpenRoot(base)
	if err != nil {
		return false, err
	}
	defer root.Close()
	fi, err := root.Lstat(rel)
	if err != nil {
		return false, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return false, fmt.Errorf("%s %w", path, errSymlink)
	}
	want := fi.Mode()&specialBits | fi.Mode().Perm()&^0o077
	if want == fi.Mode()&(specialBits|fs.ModePerm) {
		return false, nil
	}
	if err := root.Chmod(rel, want); err != nil {
		return false, err
	}
	return true, nil
}
