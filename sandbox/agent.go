package sandbox

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// The exec agent's binary. It reaches every container of an "exec":
// "agent" profile as a read-only bind mount of a host file (see FindAgent
// and CheckAgent): one root-owned, static file that the engine maps into
// each container, whatever the image (FROM scratch included), without
// writing anything into the container or the image.
const (
	// AgentEnv names the agent binary explicitly.
	AgentEnv = "CLAWGUARD_AGENT"
	// AgentName is the program's file name, next to clawguard or on PATH.
	AgentName = "clawguard-agent"
	// AgentPath is where the binary appears inside a sandbox.
	AgentPath = agentDir + "/agent"
	agentDir  = "/.clawguard"
)

// ErrNoAgent: no usable clawguard-agent binary was found.
var ErrNoAgent = errors.New("no clawguard-agent binary")

// FindAgent returns the exec agent binary the sidecar mounts into its
// sandboxes: $CLAWGUARD_AGENT if set, else clawguard-agent next to the
// running executable, else clawguard-agent on PATH. The file is checked
// with CheckAgent; the error names what is missing or wrong.
func FindAgent() (string, error) {
	if p := os.Getenv(AgentEnv); p != "" {
		if !filepath.IsAbs(p) {
			return "", fmt.Errorf("%w: %s=%q is not an absolute path", ErrNoAgent, AgentEnv, p)
		}
		return CheckAgent(p)
	}
	var tried []string
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), AgentName)
		if _, err := os.Stat(p); err == nil {
			return CheckAgent(p)
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath(AgentName); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return CheckAgent(abs)
		}
	}
	tried = append(tried, AgentName+" on PATH")
	return "", fmt.Errorf("%w: %s is not set, and there is no %s (tried %q); install it next to clawguard "+
		"(go install ./cmd/... does), set %s, or give the profiles \"exec\": \"docker\"", ErrNoAgent, AgentEnv, AgentName, tried, AgentEnv)
}

// CheckAgent resolves p's symlinks and checks that the file may be mounted
// into sandboxes as their exec agent: a regular file, executable by
// everyone (the sandbox user runs it), writable by its owner only, owned by
// root or by the sidecar's own user (a sandbox user that owned it could
// change it for every sandbox), and a static ELF program (an image may have
// no libc or loader). It returns the resolved path.
func CheckAgent(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoAgent, err)
	}
	fi, err := os.Stat(r)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoAgent, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%w: %s is not a regular file", ErrNoAgent, r)
	case fi.Mode().Perm()&0o111 != 0o111:
		return "", fmt.Errorf("%w: %s is mode %v; the sandbox user must be able to execute it (chmod 0755)", ErrNoAgent, r, fi.Mode().Perm())
	case fi.Mode().Perm()&0o022 != 0:
		return "", fmt.Errorf("%w: %s is writable by group or others (mode %v); it runs in every sandbox", ErrNoAgent, r, fi.Mode().Perm())
	case !ok || (st.Uid != 0 && int(st.Uid) != os.Geteuid()):
		return "", fmt.Errorf("%w: %s must be owned by root or by the sidecar's user", ErrNoAgent, r)
	}
	f, err := elf.Open(r)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrNoAgent, r, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%w: %s is dynamically linked; build it with CGO_ENABLED=0 go build ./cmd/clawguard-agent", ErrNoAgent, r)
		}
	}
	return r, nil
}
