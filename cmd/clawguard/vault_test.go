package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawguard/clawguard/vault"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type cliResult struct {
	stdout, stderr string
	code           int
}

func runCLI(stdin io.Reader, stdout io.Writer, args ...string) cliResult {
	var out, errs syncBuffer
	if stdout == nil {
		stdout = &out
	}
	code := run(context.Background(), &cli{stdin: stdin, stdout: stdout, stderr: &errs}, args)
	return cliResult{out.String(), errs.String(), code}
}

// vaultCLI runs `clawguard vault <args> --state-dir dir` with stdin.
func vaultCLI(t *testing.T, dir, stdin string, args ...string) cliResult {
	t.Helper()
	return runCLI(strings.NewReader(stdin), nil, append(append([]string{"vault"}, args...), "--state-dir", dir)...)
}

func wantCode(t *testing.T, r cliResult, code int, stderrParts ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	for _, p := range stderrParts {
		if !strings.Contains(r.stderr, p) {
			t.Fatalf("stderr %q lacks %q", r.stderr, p)
		}
	}
}

// setupVaultCLI gives a state dir and a passphrase (the default scrypt cost
// applies: the CLI has no knob for it, so each test pays one derivation).
func setupVaultCLI(t *testing.T) string {
	t.Setenv(vault.PassphraseEnv, "cli test passphrase")
	return filepath.Join(t.TempDir(), "state")
}

func TestVaultCLIRoundTrip(t *testing.T) {
	dir := setupVaultCLI(t)
	secrets := map[string]string{
		"gateway_token": "tok-ABC-123",    // from "tok-ABC-123\n"
		"windows_line":  "crlf-secret",    // from "crlf-secret\r\n"
		"two_newlines":  "keeps-one\n",    // only one newline is stripped
		"no_newline":    "exact\x00bytes", // binary, no newline
	}
	inputs := map[string]string{
		"gateway_token": "tok-ABC-123\n", "windows_line": "crlf-secret\r\n",
		"two_newlines": "keeps-one\n\n", "no_newline": "exact\x00bytes",
	}
	for name, in := range inputs {
		r := vaultCLI(t, dir, in, "set", name)
		wantCode(t, r, 0, "stored")
		if strings.Contains(r.stderr+r.stdout, strings.TrimSpace(in)) {
			t.Fatalf("set echoed the value: %+v", r)
		}
	}
	for name, want := range secrets {
		r := vaultCLI(t, dir, "", "get", name)
		wantCode(t, r, 0)
		if r.stdout != want {
			t.Fatalf("get %s printed %q, want %q", name, r.stdout, want)
		}
	}

	r := vaultCLI(t, dir, "", "list")
	wantCode(t, r, 0)
	if r.stdout != "gateway_token\nno_newline\ntwo_newlines\nwindows_line\n" {
		t.Fatalf("list printed %q", r.stdout)
	}
	// Flags work after positional arguments too.
	r = runCLI(nil, nil, "vault", "list", "--state-dir", dir, "--json")
	wantCode(t, r, 0)
	var listed struct {
		Vault string   `json:"vault"`
		Names []string `json:"names"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || listed.Vault != vault.Path(dir) || len(listed.Names) != 4 {
		t.Fatalf("list --json: %q (%v)", r.stdout, err)
	}

	wantCode(t, vaultCLI(t, dir, "", "rotate"), 0, "rotated")
	if r := vaultCLI(t, dir, "", "get", "gateway_token"); r.stdout != "tok-ABC-123" {
		t.Fatalf("after rotate: %+v", r)
	}
	wantCode(t, vaultCLI(t, dir, "", "rm", "gateway_token"), 0, "removed")
	wantCode(t, vaultCLI(t, dir, "", "get", "gateway_token"), 1, "not found")
	wantCode(t, vaultCLI(t, dir, "", "rm", "gateway_token"), 1, "not found")

	wantCode(t, vaultCLI(t, dir, "", "set", "empty"), 1, "empty value")
	wantCode(t, vaultCLI(t, dir, "x", "set", "Bad/Name"), 2, "invalid entry name", "a-z")
	wantCode(t, vaultCLI(t, dir, "", "frobnicate"), 2, "one of: set, get")
	wantCode(t, vaultCLI(t, dir, "", "get"), 2, "takes 1 argument")

	// A wrong passphrase is a clear error naming the header; the vault is untouched.
	before, _ := os.ReadFile(vault.Path(dir))
	t.Setenv(vault.PassphraseEnv, "wrong")
	wantCode(t, vaultCLI(t, dir, "v", "set", "new"), 1, "header of", "authentication failed")
	if after, _ := os.ReadFile(vault.Path(dir)); !bytes.Equal(before, after) {
		t.Fatal("a refused set changed the vault")
	}

	// No value ever reaches the file in the clear.
	b, _ := os.ReadFile(vault.Path(dir))
	for _, s := range secrets {
		if bytes.Contains(b, []byte(strings.TrimSpace(s))) {
			t.Fatalf("vault file contains %q", s)
		}
	}
}

func TestVaultCLIHelp(t *testing.T) {
	r := runCLI(nil, nil, "vault", "--help")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "import-env VAR") || !strings.Contains(r.stdout, "CLAWGUARD_VAULT_PASSPHRASE") {
		t.Fatalf("vault --help: %q", r.stdout)
	}
	for _, verb := range []string{"set", "get", "list", "rm", "rotate", "import-env"} {
		r := runCLI(nil, nil, "vault", verb, "--help")
		wantCode(t, r, 0, "Usage: clawguard vault "+verb, "-state-dir")
	}
}

// TestVaultCLIRefusesSecretsInArgv tries the mistakes that would put a
// secret in argv (and so in shell history and ps): they are refused, not
// echoed, and store nothing.
func TestVaultCLIRefusesSecretsInArgv(t *testing.T) {
	dir := setupVaultCLI(t)
	const secret = "sk-live-DO-NOT-LEAK"
	t.Setenv("OPENAI_API_KEY", secret)
	for _, args := range [][]string{
		{"set", "openai", secret},
		{"set", "openai", "--", secret},
		{"import-env", "OPENAI_API_KEY=" + secret},
		{"import-env", secret},
	} {
		r := vaultCLI(t, dir, "", args...)
		wantCode(t, r, 2)
		if strings.Contains(r.stderr+r.stdout, secret) {
			t.Fatalf("%q echoed the secret: %s", args, r.stderr)
		}
	}
	if _, err := os.Stat(vault.Path(dir)); err == nil {
		t.Fatal("a refused command created the vault")
	}
}

func TestVaultCLIImportEnv(t *testing.T) {
	dir := setupVaultCLI(t)
	t.Setenv("OPENAI_API_KEY", "sk-openai-value")
	t.Setenv("Gateway_Token", "gw-value")
	t.Setenv("EMPTY_ONE", "")
	t.Setenv("_LEADING", "x")

	// All arguments are checked first: one bad one stores nothing.
	wantCode(t, vaultCLI(t, dir, "", "import-env", "OPENAI_API_KEY", "NOT_SET_ANYWHERE_XYZ"), 1, "NOT_SET_ANYWHERE_XYZ is not set", "nothing stored")
	wantCode(t, vaultCLI(t, dir, "", "import-env", "OPENAI_API_KEY", "EMPTY_ONE"), 1, "EMPTY_ONE is empty")
	wantCode(t, vaultCLI(t, dir, "", "import-env", "_LEADING"), 2, "printenv _LEADING")
	wantCode(t, vaultCLI(t, dir, "", "import-env", "OPENAI_API_KEY", "OPENAI_API_KEY"), 2, "named twice")
	wantCode(t, vaultCLI(t, dir, "", "import-env"), 2, "at least one")
	if _, err := os.Stat(vault.Path(dir)); err == nil {
		t.Fatal("a failed import-env stored something")
	}

	r := vaultCLI(t, dir, "", "import-env", "OPENAI_API_KEY", "Gateway_Token")
	wantCode(t, r, 0, `$OPENAI_API_KEY as "openai_api_key"`, `"gateway_token"`)
	if strings.Contains(r.stderr+r.stdout, "sk-openai-value") || strings.Contains(r.stderr, "gw-value") {
		t.Fatalf("import-env echoed a value: %s", r.stderr)
	}
	for name, want := range map[string]string{"openai_api_key": "sk-openai-value", "gateway_token": "gw-value"} {
		if r := vaultCLI(t, dir, "", "get", name); r.stdout != want {
			t.Fatalf("get %s: %+v", name, r)
		}
	}
}

// TestVaultCLITerminal runs set and get on a real pseudo-terminal: the
// prompt must not echo what is typed, and get on a terminal warns.
func TestVaultCLITerminal(t *testing.T) {
	dir := setupVaultCLI(t)
	master, slave := openPTY(t)
	const typed = "typed-secret-42"

	done := make(chan cliResult)
	go func() {
		done <- runCLI(slave, nil, "vault", "set", "--state-dir", dir, "typed")
	}()
	// Type only once the prompt has turned echo off, as a person would after
	// seeing it; typing earlier would be echoed by the terminal itself.
	waitForEcho(t, slave, false)
	if _, err := master.Write([]byte(typed + "\n")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	wantCode(t, r, 0, "Value for typed (input hidden): ", "stored")
	if echoed := drain(t, master); strings.Contains(echoed, typed) {
		t.Fatalf("the terminal echoed the typed secret: %q", echoed)
	}
	// Control: echo is back on afterwards, and drain does see echoed input.
	waitForEcho(t, slave, true)
	master.Write([]byte("probe\n"))
	if echoed := drain(t, master); !strings.Contains(echoed, "probe") {
		t.Fatalf("echo not restored after the prompt (saw %q)", echoed)
	}
	if err := unix.IoctlSetInt(int(slave.Fd()), unix.TCFLSH, unix.TCIFLUSH); err != nil { // drop the probe line
		t.Fatal(err)
	}

	r = runCLI(nil, slave, "vault", "get", "--state-dir", dir, "typed")
	wantCode(t, r, 0, `warning: printing secret "typed" on a terminal`)
	if out := drain(t, master); out != typed+"\r\n" {
		t.Fatalf("get on a terminal printed %q", out)
	}
}

// openPTY opens a pseudo-terminal pair without cgo.
func openPTY(t *testing.T) (master, slave *os.File) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	rc, err := master.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n uint32
	rc.Control(func(fd uintptr) { // not master.Fd(): keep it non-blocking for deadlines
		if err = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); err == nil {
			n, err = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

func waitForEcho(t *testing.T, tty *os.File, on bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if (tio.Lflag&unix.ECHO != 0) == on {
			return
		}
	}
	t.Fatalf("terminal echo never turned %v", map[bool]string{true: "on", false: "off"}[on])
}

// drain returns what the terminal wrote to master within a short while.
func drain(t *testing.T, master *os.File) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 256)
	for {
		master.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := master.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if !os.IsTimeout(err) {
				t.Fatal(err)
			}
			return string(out)
		}
	}
}
