package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// quickstartCommands returns the shell commands of the README's quickstart
// section, in order: every line of its ```sh blocks, backslash
// continuations joined.
func quickstartCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Quickstart")
	if !ok {
		t.Fatal("README.md has no ## Quickstart section")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var cmds []string
	inSh, cont := false, ""
	for line := range strings.SplitSeq(section, "\n") {
		switch {
		case line == "```sh":
			inSh = true
		case strings.HasPrefix(line, "```"):
			inSh = false
		case inSh && strings.HasSuffix(line, "\\"):
			cont += strings.TrimSuffix(line, "\\")
		case inSh && strings.TrimSpace(cont+line) != "":
			cmds = append(cmds, cont+line)
			cont = ""
		}
	}
	return cmds
}

// TestQuickstart runs the README's quickstart as written, in one bash, as
// a new user would type it: a fresh HOME (so ~/.local/bin is new) and a
// fresh state directory ($CLAWGUARD_STATE_DIR: as root the default would be
// this machine's /var/lib/clawguard), the build from this checkout, then
// everything else from an empty directory. The one thing it fills in is the ask's ID,
// which the text says to take from the list. It ends with the sandboxed
// command's answer after a person's allow-once through the CLI.
func TestQuickstart(t *testing.T) {
	cmds := quickstartCommands(t)
	if len(cmds) < 8 {
		t.Fatalf("the quickstart has %d commands: %q", len(cmds), cmds)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	home, work := t.TempDir(), t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "CLAWGUARD_VAULT_PASSPHRASE=e2e quickstart",
		"CLAWGUARD_STATE_DIR=" + filepath.Join(home, "state")}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "DOCKER_HOST", "TMPDIR"} {
		if v := goEnvOrEnv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	sh := exec.Command("bash", "--noprofile", "--norc")
	sh.Env, sh.Dir = env, root
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	sh.Stdout, sh.Stderr = pw, pw
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The stack runs as a job of this shell: stop it as Ctrl-C would.
		fmt.Fprintln(stdin, `kill -INT $(jobs -p) 2>/dev/null; wait; exit`)
		done := make(chan error, 1)
		go func() { done <- sh.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			sh.Process.Kill()
			t.Error("the quickstart's shell did not stop")
		}
		pw.Close()
	})
	out := bufio.NewReader(pr)
	run := func(n int, cmd string, timeout time.Duration) string {
		t.Helper()
		marker := fmt.Sprintf("__quickstart_%d__", n)
		fmt.Fprintf(stdin, "%s\necho %s $?\n", cmd, marker)
		got := make(chan string, 1)
		go func() {
			var b strings.Builder
			for {
				line, err := out.ReadString('\n')
				if strings.HasPrefix(line, marker+" ") {
					got <- b.String() + "exit " + strings.TrimSpace(strings.TrimPrefix(line, marker))
					return
				}
				b.WriteString(line)
				if err != nil {
					got <- b.String() + "exit (shell output ended)"
					return
				}
			}
		}()
		select {
		case s := <-got:
			if !strings.HasSuffix(s, "exit 0") {
				t.Fatalf("quickstart command %d failed: %s\n%s", n, cmd, s)
			}
			return strings.TrimSuffix(s, "exit 0")
		case <-time.After(timeout):
			t.Fatalf("quickstart command %d took over %v: %s", n, timeout, cmd)
			return ""
		}
	}
	askID := regexp.MustCompile(`\bapr_[a-z0-9]+\b`)
	var id, outputs string
	for i, cmd := range cmds {
		if i == 1 {
			run(-1, "cd "+shellQuoteTest(work), 5*time.Second) // only the build needs the checkout
		}
		if strings.Contains(cmd, "apr_…") {
			if id == "" {
				t.Fatalf("command %d needs an ask ID, but no earlier command listed one: %s", i, cmd)
			}
			cmd = strings.ReplaceAll(cmd, "apr_…", id)
		}
		o := run(i, cmd, 4*time.Minute)
		outputs += o
		if strings.Contains(cmd, "approvals list") {
			for deadline := time.Now().Add(30 * time.Second); !askID.MatchString(o) && time.Now().Before(deadline); {
				time.Sleep(300 * time.Millisecond) // the curl before it may not have asked yet
				o = run(i, cmd, time.Minute)
			}
			id = askID.FindString(o)
		}
	}
	for _, want := range []string{"sandbox:  starter profile", `"exit_code":0`, `"stdout":"hello from a sandbox\n"`, `"decision":"allow-once"`} {
		if !strings.Contains(outputs, want) {
			t.Errorf("the quickstart's output lacks %q:\n%s", want, outputs)
		}
	}
	t.Logf("ask %s approved; the last output:\n%s", id, outputs[max(0, len(outputs)-400):])
}

// goEnvOrEnv returns $k, or what `go env k` says, so the quickstart's
// fresh HOME keeps this machine's Go caches and module proxy.
func goEnvOrEnv(k string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	b, err := exec.Command("go", "env", k).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func shellQuoteTest(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
