package testport

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestReserveNeverHandsOutAHeldPort(t *testing.T) {
	seen := map[int]bool{}
	var releases []func()
	for range 50 {
		p, release, err := Reserve()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice while reserved", p)
		}
		seen[p] = true
		releases = append(releases, release)
	}
	for _, r := range releases {
		r()
	}
}

func TestStaleReservationIsTakenOver(t *testing.T) {
	p, release, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	release()
	path := filepath.Join(registry, strconv.Itoa(p))
	// A reservation by a process that no longer exists.
	os.WriteFile(path, []byte("999999999"), 0o600)
	ok, err := claim(path)
	if err != nil || !ok {
		t.Fatalf("stale reservation not taken over: %v %v", ok, err)
	}
	os.Remove(path)
	// A live holder keeps its port.
	os.WriteFile(path, []byte(strconv.Itoa(os.Getppid())), 0o600)
	if ok, _ := claim(path); ok {
		t.Fatal("a live process's reservation was taken")
	}
	os.Remove(path)
}
