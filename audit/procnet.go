package audit

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// socket is a listening TCP socket from /proc/net/tcp or tcp6.
type socket struct {
	addr  netip.AddrPort
	uid   int
	inode uint64
	proc  string // the owning process's name, when readable
}

// tcpListen is the kernel's TCP_LISTEN state as /proc/net/tcp prints it.
const tcpListen = "0A"

// parseProcNetLine parses one line of /proc/net/tcp or /proc/net/tcp6:
//
//	sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
//	0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000  0 12345 …
//
// Addresses are hex words in the host's byte order, the port hex in
// network order. It returns listening=false for sockets in any other
// state, and an error naming the field for a malformed line.
func parseProcNetLine(line string) (s socket, listening bool, err error) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return s, false, fmt.Errorf("want at least 10 fields, got %d", len(f))
	}
	if !strings.HasSuffix(f[0], ":") {
		return s, false, fmt.Errorf("slot %q: want a number and a colon", f[0])
	}
	if f[3] != tcpListen {
		return s, false, nil
	}
	hostHex, portHex, ok := strings.Cut(f[1], ":")
	if !ok {
		return s, false, fmt.Errorf("local address %q: want ADDR:PORT", f[1])
	}
	ip, err := parseProcAddr(hostHex)
	if err != nil {
		return s, false, fmt.Errorf("local address %q: %w", f[1], err)
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil || len(portHex) != 4 {
		return s, false, fmt.Errorf("local port %q: want 4 hex digits", portHex)
	}
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return s, false, fmt.Errorf("uid %q: want a number", f[7])
	}
	inode, err := strconv.ParseUint(f[9], 10, 64)
	if err != nil {
		return s, false, fmt.Errorf("inode %q: want a number", f[9])
	}
	return socket{addr: netip.AddrPortFrom(ip, uint16(port)), uid: int(uid), inode: inode}, true, nil
}

// parseProcAddr decodes an address of /proc/net/tcp (8 hex digits) or
// tcp6 (32): 32-bit words, each printed in the host's byte order.
func parseProcAddr(h string) (netip.Addr, error) {
	if len(h) != 8 && len(h) != 32 {
		return netip.Addr{}, fmt.Errorf("want 8 or 32 hex digits, got %d", len(h))
	}
	raw, err := hex.DecodeString(h)
	if err != nil {
		return netip.Addr{}, errors.New("not hex")
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		// The digits spell the word as a number; store it the way the host
		// stored the address bytes.
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	ip, _ := netip.AddrFromSlice(b)
	return ip, nil
}

// parseProcNet parses a whole /proc/net/tcp{,6} file and returns its
// listening sockets. The header line is skipped; a malformed line is an
// error naming its line number.
func parseProcNet(data []byte) ([]socket, error) {
	var out []socket
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 && strings.Contains(line, "local_address") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		s, listening, err := parseProcNetLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if listening {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// listeningSockets reads the TCP listeners of this network namespace and,
// where /proc lets us see them, which process owns each.
func listeningSockets(procRoot string) ([]socket, error) {
	var out []socket
	found := false
	for _, name := range []string{"tcp", "tcp6"} {
		p := filepath.Join(procRoot, "net", name)
		data, err := os.ReadFile(p)
		if notExist(err) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return nil, err
		}
		found = true
		socks, err := parseProcNet(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, socks...)
	}
	if !found {
		return nil, skip("no " + filepath.Join(procRoot, "net", "tcp") + " (not Linux, or /proc not mounted)")
	}
	names := socketOwners(procRoot)
	for i := range out {
		out[i].proc = names[out[i].inode]
	}
	return out, nil
}

// socketOwners maps socket inodes to process names for the processes whose
// file descriptors this user can read (its own; all of them as root).
func socketOwners(procRoot string) map[uint64]string {
	owners := map[uint64]string{}
	pids, _ := filepath.Glob(filepath.Join(procRoot, "[0-9]*"))
	for _, pidDir := range pids {
		fds, err := os.ReadDir(filepath.Join(pidDir, "fd"))
		if err != nil {
			continue
		}
		var comm string
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(pidDir, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			inode, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			if comm == "" {
				b, _ := os.ReadFile(filepath.Join(pidDir, "comm"))
				comm = strings.TrimSpace(string(b)) + " (pid " + filepath.Base(pidDir) + ")"
			}
			owners[inode] = comm
		}
	}
	return owners
}

func (a *auditor) listeners() ([]socket, error) {
	return a.sockets.get(func() ([]socket, error) { return listeningSockets(a.opts.ProcRoot) })
}
