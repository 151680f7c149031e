package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUpStarterSandbox: on a first run with Docker and Debian's
// busybox-static, `up` builds a starter sandbox image, writes a profile
// and an approvals file that asks about everything, and prints the curl
// of a first sandboxed command. Run as printed, that command waits for a
// person; answered with `clawguard approvals allow-once`, it runs in the
// sandbox. (That existing files are never replaced is
// TestStarterSandboxKeepsUsersConfig in cmd/clawguard.)
func TestUpStarterSandbox(t *testing.T) {
	// Built afresh (unless a sandbox uses it right now), to see that the
	// build leaves nothing behind.
	if ids, err := exec.Command("docker", "images", "-q", "clawguard-sandbox-busybox").Output(); err == nil {
		for _, id := range strings.Fields(string(ids)) {
			exec.Command("docker", "rmi", id).Run()
		}
	}
	danglingBefore := danglingImages(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	pass := "CLAWGUARD_VAULT_PASSPHRASE=e2e passphrase"
	env := append(os.Environ(), pass)
	_, lines := upLines(t, stateDir, []string{pass})
	var sandboxLine, execLine string
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "sandbox:  "); ok {
			sandboxLine = rest
		}
		if rest, ok := strings.CutPrefix(l, "exec:     "); ok {
			execLine, _, _ = strings.Cut(rest, "   <- ")
		}
	}
	if !strings.HasPrefix(sandboxLine, "starter profile \"*\" with image clawguard-sandbox-busybox:") || execLine == "" {
		t.Fatalf("no starter sandbox in the banner:\n%s", strings.Join(lines, "\n"))
	}
	for _, f := range []string{"sidecar.json", "approvals.json"} {
		fi, err := os.Stat(filepath.Join(stateDir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want a 0600 file", f, err, fi.Mode())
		}
	}

	// The printed command, as a person would paste it: it waits for them.
	var out bytes.Buffer
	curl := exec.Command("sh", "-c", execLine)
	curl.Env, curl.Stdout, curl.Stderr, curl.Dir = env, &out, &out, t.TempDir()
	if err := curl.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- curl.Wait() }()
	t.Cleanup(func() { curl.Process.Kill() })

	cg := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(clawguardBin, append(args, "--state-dir", stateDir)...)
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("clawguard %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return b
	}
	var id string
	for deadline := time.Now().Add(60 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var list struct {
			Approvals []struct {
				ID   string   `json:"id"`
				Argv []string `json:"argv"`
			} `json:"approvals"`
		}
		if err := json.Unmarshal(cg("approvals", "list", "--json"), &list); err != nil {
			t.Fatal(err)
		}
		for _, a := range list.Approvals {
			if len(a.Argv) > 0 && a.Argv[0] == "/bin/echo" {
				id = a.ID
			}
		}
		select {
		case err := <-done:
			t.Fatalf("the command ended before anyone answered: %v\n%s", err, out.String())
		default:
		}
	}
	if id == "" {
		t.Fatal("the first command never showed up as an ask")
	}
	cg("approvals", "allow-once", id)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("the approved command did not finish:\n%s", out.String())
	}
	var res struct {
		ExitCode int    `json:"exit_code"`
		Stdout   string `json:"stdout"`
		Decision string `json:"decision"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.ExitCode != 0 || res.Stdout != "hello from a sandbox\n" {
		t.Fatalf("the approved command's answer: %v\n%s", err, out.String())
	}
	t.Logf("approved %s; the sandbox said %q (decision %s)", id, res.Stdout, res.Decision)

	// What up wrote: a "*" profile, and a policy that asks.
	before, _ := os.ReadFile(filepath.Join(stateDir, "sidecar.json"))
	msg, err := os.ReadFile(filepath.Join(stateDir, "approvals.json"))
	if err != nil || !strings.Contains(string(msg), `"mode": "ask"`) {
		t.Fatalf("approvals.json: %v %s", err, msg)
	}
	if !bytes.Contains(before, []byte(`"*"`)) {
		t.Fatalf("sidecar.json: %s", before)
	}
	// Building the image left no untagged layers behind.
	if after := danglingImages(t); len(after) > len(danglingBefore) {
		t.Errorf("dangling images: %d before, %d after (%q)", len(danglingBefore), len(after), after)
	}
}

// danglingImages lists the Docker host's untagged images that up's starter
// image builds made (label clawguard.starter): other packages' tests build
// images on the same engine at the same time.
func danglingImages(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("docker", "images", "-q", "-f", "dangling=true", "-f", "label=clawguard.starter=1").Output()
	if err != nil {
		t.Fatalf("docker images: %v", err)
	}
	return strings.Fields(string(out))
}
