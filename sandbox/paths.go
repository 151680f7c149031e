package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// credentialDirs are home-directory entries that hold credentials; a bind
// mount may neither be inside one nor contain one.
var credentialDirs = []string{".ssh", ".aws", ".docker", ".kube", ".gnupg", ".azure", ".config/gcloud", ".password-store"}

// systemPaths are host paths a bind mount may neither be inside of nor
// contain: the Docker socket and daemon state (root on the host), kernel
// interfaces, system configuration.
var systemPaths = []string{
	"/proc", "/sys", "/dev", "/etc", "/boot", "/root",
	"/run/docker.sock", "/var/run/docker.sock", "/run/containerd", "/var/run/containerd",
	"/var/lib/docker", "/var/lib/containerd",
}

// CheckWorkspaceRoot validates the directory under which every workspace and
// mount source must lie: absolute, and neither a system path, nor a home
// credential directory, nor containing one of them or a protected path.
func CheckWorkspaceRoot(root string, protected []string) error {
	if !filepath.IsAbs(root) {
		return fmt.Errorf("workspace_root %q must be an absolute path", root)
	}
	r, err := resolve(root)
	if err != nil {
		return fmt.Errorf("workspace_root %q: %w", root, err)
	}
	if err := refuseSensitive(r, protected); err != nil {
		return fmt.Errorf("workspace_root %q: %w", root, err)
	}
	return nil
}

// checkBindSource validates a bind mount source and returns it with symlinks
// resolved: it must lie inside root (after resolving symlinks on both, so a
// link inside root cannot point out of it) and touch no sensitive path.
func checkBindSource(src, root string, protected []string) (string, error) {
	if !filepath.IsAbs(src) {
		return "", fmt.Errorf("%q must be an absolute path", src)
	}
	r, err := resolve(src)
	if err != nil {
		return "", fmt.Errorf("%q: %w", src, err)
	}
	rr, err := resolve(root)
	if err != nil {
		return "", fmt.Errorf("workspace_root %q: %w", root, err)
	}
	if !within(r, rr) {
		if r != src {
			return "", fmt.Errorf("%q (resolves to %q) is outside workspace_root %q; binds outside the workspace are refused", src, r, root)
		}
		return "", fmt.Errorf("%q is outside workspace_root %q; binds outside the workspace are refused", src, root)
	}
	if err := refuseSensitive(r, protected); err != nil {
		return "", fmt.Errorf("%q: %w", src, err)
	}
	return r, nil
}

// refuseSensitive refuses a resolved host path that is, is inside, or
// contains a system path, a home credential directory or a protected path.
func refuseSensitive(r string, protected []string) error {
	for _, s := range sensitivePaths() {
		if within(r, s) || within(s, r) {
			return fmt.Errorf("exposes %s; refused", s)
		}
	}
	for _, p := range protected {
		if p == "" {
			continue
		}
		if pr, err := resolve(p); err == nil && within(pr, r) {
			return fmt.Errorf("contains %s (clawguard's state: the vault and keys); refused", p)
		}
	}
	parts := strings.Split(r, string(filepath.Separator))
	for i := range parts {
		for _, c := range credentialDirs {
			n := len(strings.Split(c, "/"))
			if i+n <= len(parts) && strings.Join(parts[i:i+n], "/") == c {
				return fmt.Errorf("is inside a credential directory (%s); refused", c)
			}
		}
	}
	return nil
}

// sensitivePaths lists system paths, their symlink-resolved forms, the Docker
// socket named by DOCKER_HOST, and the credential directories of every home
// directory on this host (read now: homes can be added at any time).
func sensitivePaths() []string {
	out := append([]string(nil), systemPaths...)
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok && h != "" {
		out = append(out, filepath.Clean(h))
	}
	var homes []string
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		homes = append(homes, h)
	}
	homes = append(homes, "/root")
	if ents, err := os.ReadDir("/home"); err == nil {
		for _, e := range ents {
			homes = append(homes, filepath.Join("/home", e.Name()))
		}
	}
	for _, h := range homes {
		for _, c := range credentialDirs {
			out = append(out, filepath.Join(h, c))
		}
	}
	n := len(out)
	for _, p := range out[:n] {
		if r, err := resolve(p); err == nil && r != p {
			out = append(out, r)
		}
	}
	return out
}

// resolve returns p, absolute and clean, with the symlinks of its longest
// existing prefix resolved: a path that does not exist yet (a workspace to be
// created) resolves the way it will once created.
func resolve(p string) (string, error) {
	p = filepath.Clean(p)
	rest := ""
	for cur := p; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// within reports whether p is dir or inside it (both clean and absolute).
func within(p, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}
