package stack

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clawguard/clawguard/internal/testport"
)

// Build compiles cmd/clawguard into dir and returns the binary's path.
func Build(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "clawguard")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/clawguard")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building clawguard: %w\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the clawguard module")
	}
	return filepath.Dir(gomod), nil
}

// FreePort returns a loopback TCP port reserved across processes until the
// caller's process exits (see internal/testport).
func FreePort() (int, error) {
	port, _, err := testport.Reserve()
	return port, err
}

// Options configures Start.
type Options struct {
	Binary   string   // the clawguard binary (see Build). Required.
	StateDir string   // required
	Env      []string // extra environment, e.g. CLAWGUARD_VAULT_PASSPHRASE=…
	Args     []string // extra `up` flags, e.g. --upstream URL
}

// Stack is a running `clawguard up`.
type Stack struct {
	Cmd            *exec.Cmd
	Base           string // the gate, http://127.0.0.1:port
	Admin          string // Caddy's admin endpoint host:port (gate /metrics)
	UI             string // the gate's admin listener (admin UI and API), http://127.0.0.1:port
	SidecarMetrics string // host:port serving the sidecar's /metrics
	lines          chan string
}

// Start runs `clawguard up` on free loopback ports.
func Start(opts Options) (*Stack, error) {
	var ports [4]int
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	s := &Stack{
		Base:           fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		Admin:          fmt.Sprintf("localhost:%d", ports[1]),
		SidecarMetrics: fmt.Sprintf("127.0.0.1:%d", ports[2]),
		UI:             fmt.Sprintf("http://127.0.0.1:%d", ports[3]),
		lines:          make(chan string, 4096),
	}
	args := append([]string{"up", "--listen", strings.TrimPrefix(s.Base, "http://"), "--admin", s.Admin,
		"--sidecar-metrics", s.SidecarMetrics, "--admin-listen", strings.TrimPrefix(s.UI, "http://"), "--state-dir", opts.StateDir}, opts.Args...)
	s.Cmd = exec.Command(opts.Binary, args...)
	s.Cmd.Env = append(os.Environ(), opts.Env...)
	stdout, err := s.Cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.Cmd.Stderr = s.Cmd.Stdout
	if err := s.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case s.lines <- sc.Text():
			default: // nobody reads: drop rather than block the process
			}
		}
		close(s.lines)
	}()
	return s, nil
}

// WaitLine returns the submatches of the first output line matching re.
func (s *Stack) WaitLine(re string, timeout time.Duration) ([]string, error) {
	rx := regexp.MustCompile(re)
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return nil, fmt.Errorf("clawguard up exited before printing %q", re)
			}
			if m := rx.FindStringSubmatch(l); m != nil {
				return m, nil
			}
		case <-deadline:
			return nil, fmt.Errorf("no line matching %q within %s", re, timeout)
		}
	}
}

// Ready waits for `up` to report the stack running and returns the token
// line's value (the token itself on a first run).
func (s *Stack) Ready(timeout time.Duration) (tokenLine string, err error) {
	m, err := s.WaitLine(`^\[up\] token:\s+(\S+)`, timeout)
	if err != nil {
		return "", err
	}
	if _, err := s.WaitLine(`^\[up\] Ctrl-C stops everything`, 10*time.Second); err != nil {
		return "", err
	}
	return m[1], nil
}

// Stop sends SIGINT (Ctrl-C) and waits for `up` to exit.
func (s *Stack) Stop(timeout time.Duration) error {
	if s.Cmd.ProcessState != nil {
		return nil
	}
	s.Cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- s.Cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		s.Cmd.Process.Kill()
		<-done
		return fmt.Errorf("clawguard up did not stop within %s of SIGINT", timeout)
	}
}

// Kill ends `up` at once (for cleanup after a failed test).
func (s *Stack) Kill() {
	if s.Cmd.ProcessState == nil {
		s.Cmd.Process.Kill()
		s.Cmd.Wait()
	}
}

// Children returns the PIDs of `up`'s child processes by role ("caddy",
// "sidecar"), read from /proc.
func (s *Stack) Children() (map[string]int, error) {
	// Each thread lists the children it forked; Go forks from any thread.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", s.Cmd.Process.Pid))
	if err != nil {
		return nil, err
	}
	var all []byte
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		all = append(append(all, b...), ' ')
	}
	out := map[string]int{}
	for f := range strings.FieldsSeq(string(all)) {
		child, _ := strconv.Atoi(f)
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 1 {
			out[args[1]] = child
		}
	}
	return out, nil
}

// RSS is a process's resident set size in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
