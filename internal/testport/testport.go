package testport

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// registry is the directory of reservations: one file per port holding the
// reserving process's PID.
var registry = filepath.Join(os.TempDir(), "clawguard-test-ports")

// Reserve returns a free port on 127.0.0.1 and a func that releases the
// reservation (call it when whatever was given the port is done with it).
func Reserve() (port int, release func(), err error) {
	if err := os.MkdirAll(registry, 0o700); err != nil {
		return 0, nil, fmt.Errorf("testport: %w", err)
	}
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, nil, fmt.Errorf("testport: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		path := filepath.Join(registry, strconv.Itoa(port))
		ok, err := claim(path)
		l.Close()
		if err != nil {
			return 0, nil, err
		}
		if ok {
			return port, func() { os.Remove(path) }, nil
		}
	}
	return 0, nil, errors.New("testport: no free port found in 200 tries")
}

// claim creates path for this process, taking over a reservation whose
// process has died.
func claim(path string) (bool, error) {
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			_, err = fmt.Fprint(f, os.Getpid())
			f.Close()
			return err == nil, err
		}
		if !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("testport: %w", err)
		}
		if holderAlive(path) {
			return false, nil
		}
		os.Remove(path)
	}
	return false, nil
}

func holderAlive(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}

// Free returns a port reserved for the rest of the test t (Reserve,
// released at t's cleanup), failing t if none can be had.
func Free(t testing.TB) int {
	t.Helper()
	port, release, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return port
}
