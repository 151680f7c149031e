package multihost

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stateDir is every host's clawguard state directory: a tmpfs owned by the
// image's user, gone with the container.
const stateDir = "/state"

// configured is the file whose appearance lets a held container's program
// start (see hold).
const configured = stateDir + "/.configured"

// logLines is how much of each container's log a failing test prints.
const logLines = 60

// world is one run's private network and its containers, all removed when
// the test ends (their logs printed first if it failed).
type world struct {
	t          *testing.T
	id         string // names and labels this run's resources
	image      string
	network    string
	secretEnv  []string // NAME=value given to docker, never in argv
	secrets    []string // every secret of the run (see secret)
	containers []string
}

func newWorld(t *testing.T, ctx context.Context, image string) *world {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	w := &world{t: t, id: "cgmh-" + hex.EncodeToString(b), image: image}
	w.network = w.id
	w.secretEnv = []string{"CLAWGUARD_VAULT_PASSPHRASE=" + w.secret()}
	t.Cleanup(w.cleanup)
	// --internal: no route off the network; the test process still reaches
	// it through the host's bridge address.
	w.must(ctx, "network", "create", "--internal", "--label", labelRun+"="+w.id,
		"--label", labelPID+"="+strconv.Itoa(os.Getpid()), w.network)
	return w
}

// secret returns 32 random bytes in hex, remembered so that checkSecrets
// can look for it where no secret may be.
func (w *world) secret() string {
	b := make([]byte, 32)
	rand.Read(b)
	s := hex.EncodeToString(b)
	w.secrets = append(w.secrets, s)
	return s
}

func (w *world) must(ctx context.Context, args ...string) string {
	w.t.Helper()
	out, err := docker(ctx, nil, w.secretEnv, args...)
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// container is the Docker name of host name.
func (w *world) container(name string) string { return w.id + "-" + name }

// onNetwork are the docker run flags that put host name on the private
// network, known there by its name.
func (w *world) onNetwork(name string) []string {
	return []string{"--network", w.network, "--hostname", name, "--network-alias", name}
}

// beside are the docker run flags that put a container in host's network
// namespace: another process of the same host, sharing its loopback.
func (w *world) beside(host string) []string {
	return []string{"--network", "container:" + w.container(host)}
}

// run starts container name: read-only root, a tmpfs state directory, no
// capabilities, no new privileges, the image's unprivileged user, and the
// vault passphrase by name from the environment. network is onNetwork or
// beside, extra further docker run flags; argv is the program.
func (w *world) run(ctx context.Context, name string, network, extra []string, argv ...string) {
	w.t.Helper()
	c := w.container(name)
	args := append([]string{"run", "-d", "--name", c}, network...)
	args = append(args,
		"--label", labelRun+"="+w.id, "--label", labelPID+"="+strconv.Itoa(os.Getpid()),
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--tmpfs", stateDir+":uid=65532,gid=65532,mode=0700,size=64m",
		"-e", "HOME="+stateDir, "-e", "CLAWGUARD_STATE_DIR="+stateDir, "-e", "CLAWGUARD_VAULT_PASSPHRASE",
		// Tailscale offline: no port-mapping probes, no log upload. The
		// containers' own addresses stay in: they are how nodes on the
		// network find each other directly.
		"-e", "TS_DISABLE_PORTMAPPER=1", "-e", "TS_NO_LOGS_NO_SUPPORT=true",
	)
	args = append(append(append(args, extra...), w.image), argv...)
	w.containers = append(w.containers, c)
	w.must(ctx, args...)
}

// hold wraps argv so that it starts only once configure has written the
// host's secrets and files (they need the running container's vault).
func hold(argv ...string) []string {
	return append([]string{"sh", "-c", `until [ -e ` + configured + ` ]; do sleep 0.05; done; exec "$@"`, "hold"}, argv...)
}

// configure stores the vault entries (from stdin, never argv) and writes
// files (mode 0600, under the state directory) in host name, then lets its
// held program start.
func (w *world) configure(ctx context.Context, name string, vault, files map[string]string) {
	w.t.Helper()
	c := w.container(name)
	for entry, value := range vault {
		if _, err := docker(ctx, strings.NewReader(value), w.secretEnv, "exec", "-i", "-e", "CLAWGUARD_VAULT_PASSPHRASE", c,
			"clawguard", "vault", "set", entry); err != nil {
			w.t.Fatalf("%s: vault set %s: %v", name, entry, err)
		}
	}
	for file, content := range files {
		if _, err := docker(ctx, strings.NewReader(content), nil, "exec", "-i", c,
			"sh", "-c", `umask 077 && cat > "$1"`, "sh", stateDir+"/"+file); err != nil {
			w.t.Fatalf("%s: writing %s: %v", name, file, err)
		}
	}
	w.must(ctx, "exec", c, "touch", configured)
}

// exec runs argv in host name and returns its output and exit status.
func (w *world) exec(ctx context.Context, name string, argv ...string) (string, int) {
	out, err := docker(ctx, nil, nil, append([]string{"exec", w.container(name)}, argv...)...)
	if err != nil {
		w.t.Logf("%s: %v", name, err)
		return out, exitCode(err)
	}
	return out, 0
}

// waitLog waits until host name's log has a line matching re and returns
// its submatches.
func (w *world) waitLog(ctx context.Context, name, re string, timeout time.Duration) []string {
	w.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		out, err := logs(ctx, w.container(name), 0)
		if m := rx.FindStringSubmatch(out); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: no log line matching %q within %s (%v)", name, re, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logs returns container c's output, stdout and stderr as they came; tail
// > 0 keeps the last tail lines.
func logs(ctx context.Context, c string, tail int) (string, error) {
	args := []string{"logs", c}
	if tail > 0 {
		args = []string{"logs", "--tail", strconv.Itoa(tail), c}
	}
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return string(out), err
}

// cleanup prints the logs of a failed run, then removes its containers and
// network, whatever state they are in.
func (w *world) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if w.t.Failed() {
		for _, c := range w.containers {
			out, err := logs(ctx, c, logLines)
			w.t.Logf("--- docker logs --tail %d %s (%v)\n%s", logLines, c, err, out)
		}
	}
	if len(w.containers) > 0 {
		if _, err := docker(ctx, nil, nil, append([]string{"rm", "-f"}, w.containers...)...); err != nil {
			w.t.Errorf("removing containers: %v", err)
		}
	}
	if _, err := docker(ctx, nil, nil, "network", "rm", w.network); err != nil {
		w.t.Errorf("removing network %s: %v", w.network, err)
	}
}
