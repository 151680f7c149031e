package sandboxtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/clawguard/clawguard/sandbox"
)

var agentOnce struct {
	sync.Once
	path string
	err  error
}

// Agent returns a clawguard-agent binary for the sandboxes: $CLAWGUARD_AGENT
// if it is set, else cmd/clawguard-agent of this module built static
// (CGO_ENABLED=0) once per process into a private directory under the
// temp dir, and exports CLAWGUARD_AGENT naming it, so managers and sidecar
// processes started afterwards find it.
func Agent(ctx context.Context) (string, error) {
	agentOnce.Do(func() {
		if p := os.Getenv(sandbox.AgentEnv); p != "" {
			agentOnce.path, agentOnce.err = sandbox.CheckAgent(p)
			return
		}
		agentOnce.path, agentOnce.err = buildAgent(ctx)
		if agentOnce.err == nil {
			os.Setenv(sandbox.AgentEnv, agentOnce.path)
		}
	})
	return agentOnce.path, agentOnce.err
}

func buildAgent(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("test agent: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("test agent: not inside the clawguard module")
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("clawguard-test-agent-%d", os.Geteuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("test agent: %w", err)
	}
	// The directory is ours alone: nobody else may swap the binary that
	// every test sandbox runs.
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("test agent: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("test agent: %s is not a directory of this user's that only it can write", dir)
	}
	tmp, err := os.CreateTemp(dir, "build-*")
	if err != nil {
		return "", fmt.Errorf("test agent: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp.Name(), "./cmd/clawguard-agent")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("test agent: go build ./cmd/clawguard-agent: %w\n%s", err, out)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", fmt.Errorf("test agent: %w", err)
	}
	// Each test binary renames its own build over the last one: containers
	// that bound the old file keep its inode.
	p := filepath.Join(dir, sandbox.AgentName)
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("test agent: %w", err)
	}
	return sandbox.CheckAgent(p)
}
