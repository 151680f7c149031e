package vault

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The multi-process tests re-execute this test binary as TestHelperProcess,
// configured through these environment variables.
const (
	envHelper = "VAULT_TEST_HELPER" // "writer" or "churn"
	envDir    = "VAULT_TEST_DIR"
	envArg    = "VAULT_TEST_ARG" // writer: "<prefix> <count> <start-file>"; churn: first write's number
)

const (
	churnEntries = 8
	churnSize    = 32 << 10 // a few hundred KB of vault file: its fsync is the window to kill in
)

// TestHelperProcess is not a test on its own: it is the other process of the
// tests below, and returns at once when run normally.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		return
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	v, err := OpenWithOptions(Options{StateDir: os.Getenv(envDir), Passphrase: testPass, ScryptN: minScryptN})
	if err != nil {
		fail(err)
	}
	switch mode {
	case "writer":
		var prefix, start string
		var count int
		fmt.Sscan(os.Getenv(envArg), &prefix, &count, &start)
		for { // start together with the other writer
			if _, err := os.Stat(start); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		for i := range count {
			if err := v.Set(fmt.Sprintf("%s-%d", prefix, i), []byte(fmt.Sprintf("value %s %d", prefix, i))); err != nil {
				fail(err)
			}
		}
	case "churn":
		// Rewrite the big entries forever, acknowledging each committed write.
		base, _ := strconv.Atoi(os.Getenv(envArg))
		for i := base; ; i++ {
			if err := v.Set(churnName(i), churnValue(i)); err != nil {
				fail(err)
			}
			fmt.Println(i)
		}
	}
	os.Exit(0)
}

func churnName(i int) string { return fmt.Sprintf("big-%d", i%churnEntries) }

// churnValue is write i's value, reproducible by the parent.
func churnValue(i int) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(i)+1)
	b := make([]byte, churnSize)
	rand.NewChaCha8(seed).Read(b)
	return b
}

func helperCmd(t *testing.T, mode, dir, arg string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), envHelper+"="+mode, envDir+"="+dir, envArg+"="+arg)
	cmd.Stderr = &bytes.Buffer{}
	return cmd
}

// TestConcurrentWritersTwoProcesses: two processes Set at the same time; the
// lock must serialise their read-modify-write cycles so no write is lost
// (including the race to create the vault).
func TestConcurrentWritersTwoProcesses(t *testing.T) {
	opts := testOptions(t)
	start := filepath.Join(t.TempDir(), "go")
	const perWriter = 40
	var cmds []*exec.Cmd
	for _, prefix := range []string{"a", "b"} {
		cmd := helperCmd(t, "writer", opts.StateDir, fmt.Sprintf("%s %d %s", prefix, perWriter, start))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	os.WriteFile(start, nil, 0o600)
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer: %v: %s", err, cmd.Stderr)
		}
	}
	v := mustOpen(t, opts)
	names, err := v.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2*perWriter {
		t.Fatalf("%d entries after two writers stored %d: lost writes", len(names), 2*perWriter)
	}
	for _, prefix := range []string{"a", "b"} {
		for i := range perWriter {
			mustGet(t, v, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("value %s %d", prefix, i))
		}
	}
}

// TestKilledWriterLeavesReadableVault kills a writer with SIGKILL while its
// temp file is being written, then checks the vault is whole: every entry
// opens and holds its last acknowledged value, except that the write in
// flight may have landed whole.
func TestKilledWriterLeavesReadableVault(t *testing.T) {
	opts := testOptions(t)
	v := mustOpen(t, opts)
	for i := range churnEntries {
		mustSet(t, v, churnName(i), string(churnValue(i)))
	}
	midWrite := 0
	for attempt := 0; attempt < 10 && midWrite < 2; attempt++ {
		want := make(map[string][]byte, churnEntries)
		for i := range churnEntries {
			want[churnName(i)], _ = v.Get(churnName(i))
		}
		base := 1000 * (attempt + 1) // values no earlier write had
		acked, hit := killChurner(t, opts.StateDir, base)
		if hit {
			midWrite++
		}
		for j := base; j <= acked; j++ {
			want[churnName(j)] = churnValue(j)
		}
		names, err := v.List()
		if err != nil {
			t.Fatalf("vault unreadable after kill -9: %v", err)
		}
		if len(names) != churnEntries {
			t.Fatalf("%d entries after kill -9, want %d", len(names), churnEntries)
		}
		for name, w := range want {
			got, err := v.Get(name)
			if err != nil {
				t.Fatalf("after kill -9: %v", err)
			}
			if !bytes.Equal(got, w) && !(name == churnName(acked+1) && bytes.Equal(got, churnValue(acked+1))) {
				t.Fatalf("entry %s is neither its last acknowledged value nor the write in flight (acked up to %d)", name, acked)
			}
		}
	}
	if midWrite == 0 {
		t.Fatal("never killed the writer while its temp file existed; the test proved nothing")
	}
	// The next writer is not wedged by the dead one's lock, and tidies its temp file.
	mustSet(t, v, "after", "ok")
	if temps := tempFiles(t, opts.StateDir); len(temps) != 0 {
		t.Fatalf("temp files left after a successful write: %v", temps)
	}
	t.Logf("killed %d writers mid-write", midWrite)
}

// killChurner starts a churn helper, waits for its first acknowledged write,
// SIGKILLs it as soon as a temp file of its next write appears, and returns
// the last acknowledged write and whether the temp file outlived it.
func killChurner(t *testing.T, dir string, base int) (acked int, midWrite bool) {
	cmd := helperCmd(t, "churn", dir, strconv.Itoa(base))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acks := make(chan int, 1024)
	go func() {
		defer close(acks)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n, _ := strconv.Atoi(sc.Text())
			acks <- n
		}
	}()
	select {
	case acked = <-acks:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("helper never wrote: %s", cmd.Stderr)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if len(tempFiles(t, dir)) > 0 {
			break
		}
	}
	cmd.Process.Kill() // SIGKILL: no deferred cleanup runs
	for n := range acks {
		acked = n
	}
	cmd.Wait()
	return acked, len(tempFiles(t, dir)) > 0
}

func tempFiles(t *testing.T, dir string) []string {
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var temps []string
	for _, e := range es {
		if strings.HasPrefix(e.Name(), ".vault.json.tmp-") {
			temps = append(temps, e.Name())
		}
	}
	return temps
}
