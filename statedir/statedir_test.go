package statedir

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestWriteFileAtomicAndPrivate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := WriteFile(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Fatalf("read back %q, %v", b, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o, want 600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
}

func TestEnsureRefusesWorldWritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %o, want 700", fi.Mode().Perm())
	}
	os.Chmod(dir, 0o777)
	if err := Ensure(dir); err == nil {
		t.Fatal("world-writable state dir accepted")
	}
}

func TestResolveOrder(t *testing.T) {
	t.Setenv(EnvVar, "/from/env")
	if got := Resolve("/from/flag"); got != "/from/flag" {
		t.Fatalf("flag: %s", got)
	}
	if got := Resolve(""); got != "/from/env" {
		t.Fatalf("env: %s", got)
	}
	t.Setenv(EnvVar, "")
	if got := Resolve(""); got != Default() {
		t.Fatalf("default: %s", got)
	}
}

func TestLockSerialises(t *testing.T) {
	p := filepath.Join(t.TempDir(), "counter")
	os.WriteFile(p, []byte{0}, 0o600)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := Lock(p)
			if err != nil {
				t.Error(err)
				return
			}
			defer unlock()
			b, _ := os.ReadFile(p)
			b[0]++
			WriteFile(p, b)
		}()
	}
	wg.Wait()
	b, _ := os.ReadFile(p)
	if b[0] != 20 {
		t.Fatalf("lost updates: counter %d, want 20", b[0])
	}
}
