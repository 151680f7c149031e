package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCheckFreeNamesAReusePortHolder: a holder bound with SO_REUSEPORT, as
// Caddy binds, would let a second Caddy share the address; checkFree's plain
// bind fails on it and names this process as the holder.
func TestCheckFreeNamesAReusePortHolder(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); err != nil {
			return err
		}
		return serr
	}}
	holder, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := holder.Addr().String()
	// What a second Caddy would do: it binds the taken address without error.
	if second, err := lc.Listen(context.Background(), "tcp", addr); err != nil {
		t.Fatalf("a second SO_REUSEPORT bind failed (%v): the premise of checkFree does not hold here", err)
	} else {
		second.Close()
	}

	err = checkFree("--listen", addr)
	comm, _ := os.ReadFile("/proc/self/comm")
	want := fmt.Sprintf("--listen %s is already in use by pid %d (%s)", addr, os.Getpid(), strings.TrimSpace(string(comm)))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("checkFree on a taken address: %v, want %q", err, want)
	}
	holder.Close()
	if err := checkFree("--listen", addr); err != nil {
		t.Fatalf("checkFree after the holder closed: %v", err)
	}
}
