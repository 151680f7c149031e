package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// EnvVar names the environment variable every clawguard command reads for the
// state directory when no --state-dir flag is given.
const EnvVar = "CLAWGUARD_STATE_DIR"

// Resolve returns the state directory to use: flagValue when set, else
// $CLAWGUARD_STATE_DIR, else Default().
func Resolve(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := os.Getenv(EnvVar); v != "" {
		return v
	}
	return Default()
}

// Default is /var/lib/clawguard for root, else $XDG_STATE_HOME/clawguard,
// else ~/.local/state/clawguard.
func Default() string {
	if os.Geteuid() == 0 {
		return "/var/lib/clawguard"
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "clawguard")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "clawguard")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("clawguard-%d", os.Getuid()))
}

// Ensure creates dir with mode 0700 if it does not exist. An existing
// directory that group or others can write is refused rather than silently
// trusted: another user could plant files in it.
func Ensure(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state dir %s: not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("state dir %s: writable by group or others (mode %04o); run chmod 700 %s",
			dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// WriteFile atomically replaces path with data, mode 0600: readers see the old
// content or the new, never a torn file, even if the process dies mid-write.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	cleanup := func(err error) error {
		tmp.Close()
		os.Remove(tmpName)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp already uses 0600; Chmod guards against an unusual umask.
	if err := tmp.Chmod(0o600); err != nil {
		return cleanup(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return cleanup(err)
	}
	if err := tmp.Sync(); err != nil {
		return cleanup(err)
	}
	if err := tmp.Close(); err != nil {
		return cleanup(err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

// ReadFile reads path, reporting a missing file as fs.ErrNotExist so callers
// can tell "not created yet" from a real failure.
func ReadFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
