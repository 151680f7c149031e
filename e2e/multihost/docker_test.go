package multihost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Every network, container and image a run makes carries labelRun=<run
// id> and labelPID=<the test process's pid>: cleanup removes what its run
// made, and the next run sweeps what a killed run left (its pid is gone).
const (
	labelRun = "clawguard.test.multihost"
	labelPID = "clawguard.test.multihost.pid"
)

// docker runs the docker CLI and returns its trimmed stdout. stdin, if not
// nil, is its input; env is added to its environment, where `docker run -e
// NAME` and `docker exec -e NAME` take values from, so secrets never go in
// argv. Errors carry the command (which holds no secret) and its stderr.
func docker(ctx context.Context, stdin io.Reader, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// exitCode is the exit status of a failed docker command (for `docker exec`,
// the program's), or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// engineCheck reports why there is no usable Docker engine, or nil.
func engineCheck() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("no docker CLI: %w", err)
	}
	if _, err := docker(ctx, nil, nil, "version", "--format", "{{.Server.APIVersion}}"); err != nil {
		return fmt.Errorf("Docker engine not reachable (set DOCKER_HOST): %w", err)
	}
	return nil
}

// sweep removes the containers, networks and images of earlier runs whose
// test process no longer exists (killed, or stopped by go test -timeout
// before its cleanups ran).
func sweep(ctx context.Context) error {
	var errs []error
	for _, kind := range []struct {
		list, inspect, remove []string
		labels                string // where inspect finds the labels
	}{
		{[]string{"ps", "-aq"}, []string{"container", "inspect"}, []string{"rm", "-f"}, ".Config.Labels"},
		{[]string{"network", "ls", "-q"}, []string{"network", "inspect"}, []string{"network", "rm"}, ".Labels"},
		{[]string{"image", "ls", "-q"}, []string{"image", "inspect"}, []string{"image", "rm"}, ".Config.Labels"},
	} {
		ids, err := docker(ctx, nil, nil, append(kind.list, "--filter", "label="+labelPID)...)
		if err != nil || ids == "" {
			errs = append(errs, err)
			continue
		}
		out, err := docker(ctx, nil, nil, append(append(kind.inspect, "--format",
			`{{.Id}} {{index `+kind.labels+` "`+labelPID+`"}}`), strings.Fields(ids)...)...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for line := range strings.Lines(out) {
			id, pid, _ := strings.Cut(strings.TrimSpace(line), " ")
			if id == "" || alive(pid) {
				continue
			}
			if _, err := docker(ctx, nil, nil, append(kind.remove, id)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// alive reports whether pid names a running process of this machine.
func alive(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return false
	}
	_, err = os.Stat("/proc/" + strconv.Itoa(n))
	return err == nil
}
