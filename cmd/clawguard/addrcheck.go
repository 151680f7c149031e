package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/clawguard/clawguard/internal/procnet"
)

// checkFree makes sure nothing listens on addr yet. Caddy binds with
// SO_REUSEPORT, so a second gate on a taken address would start silently
// and the kernel would split connections between the two; a plain bind
// (no SO_REUSEPORT) fails on any holder, and the error names it.
func checkFree(flagName, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l.Close()
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("up: %s %s: %w", flagName, addr, err)
	}
	return fmt.Errorf("up: %s %s is already in use by %s; stop it or choose another address with %s", flagName, addr, holderOf(addr), flagName)
}

// holderOf names the process listening on addr's port, from the kernel's
// socket tables and the processes' open files.
func holderOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "another process"
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "another process"
	}
	want := fmt.Sprintf(":%04X", p)
	inodes := map[uint64]bool{}
	for ino, local := range procnet.Listening() {
		if strings.HasSuffix(local, want) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return "another process (not found in /proc/net/tcp)"
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		link, err := os.Readlink(fd)
		if err != nil {
			continue
		}
		if ino, ok := procnet.SocketInode(link); ok && inodes[ino] {
			pid := strings.Split(fd, "/")[2]
			comm, _ := os.ReadFile(filepath.Join("/proc", pid, "comm"))
			return fmt.Sprintf("pid %s (%s)", pid, strings.TrimSpace(string(comm)))
		}
	}
	return "a process this user cannot see (another user's, or a container's)"
}
