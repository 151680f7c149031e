package procnet

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// Listening returns the listening TCP sockets of this network namespace:
// socket inode → local address, hex as /proc/net/tcp writes it
// ("0100007F:4A0D").
func Listening() map[uint64]string {
	socks := map[uint64]string{}
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			if ino, err := strconv.ParseUint(fields[9], 10, 64); err == nil {
				socks[ino] = fields[1]
			}
		}
		f.Close()
	}
	return socks
}

// SocketInode returns the inode of an open file's link ("socket:[123]"),
// or false if it is not a socket.
func SocketInode(link string) (uint64, bool) {
	ino, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(ino, "]"), 10, 64)
	return n, err == nil
}
