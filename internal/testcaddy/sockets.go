package testcaddy

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/clawguard/clawguard/internal/procnet"
)

// caddy.Load and caddy.Stop return once the old servers' shutdown has
// started, not once their listeners are closed (Caddy says so in its http
// app's Stop). A test's next connection can then land on a listener that
// is about to close and be reset, and a port released to another test
// binary can still be bound. So after a load or stop these helpers wait,
// reading /proc, until the old listening sockets are really gone.

var (
	openedMu sync.Mutex
	opened   = map[uint64]bool{} // listening sockets of Caddy's http servers since the last Stop
)

// settleTimeout bounds the wait; past it the test goes on as before.
const settleTimeout = 5 * time.Second

// listening returns this process's listening TCP sockets: inode → local
// address (hex, as /proc/net/tcp writes it).
func listening() map[uint64]string {
	own := map[uint64]bool{}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, fd := range fds {
			link, _ := os.Readlink("/proc/self/fd/" + fd.Name())
			if n, ok := procnet.SocketInode(link); ok {
				own[n] = true
			}
		}
	}
	socks := procnet.Listening()
	for ino := range socks {
		if !own[ino] {
			delete(socks, ino)
		}
	}
	return socks
}

// recordOpened notes the sockets that appeared across the load of cfg on
// the ports its http servers listen on (not the admin endpoint, which
// caddy.Stop leaves running, nor what other apps open).
func recordOpened(cfg []byte, before, after map[uint64]string) {
	var c struct {
		Apps struct {
			HTTP caddyhttp.App `json:"http"`
		} `json:"apps"`
	}
	if json.Unmarshal(cfg, &c) != nil {
		return
	}
	ports := map[string]bool{}
	for _, srv := range c.Apps.HTTP.Servers {
		for _, l := range srv.Listen {
			na, err := caddy.ParseNetworkAddress(l)
			if err != nil || !strings.HasPrefix(na.Network, "tcp") {
				continue
			}
			for p := na.StartPort; p <= na.EndPort; p++ {
				ports[fmt.Sprintf(":%04X", p)] = true
			}
		}
	}
	openedMu.Lock()
	defer openedMu.Unlock()
	for ino, addr := range after {
		if _, old := before[ino]; !old && ports[addr[strings.LastIndex(addr, ":"):]] {
			opened[ino] = true
		}
	}
}

// settleReload waits until no two of this process's sockets listen on the
// same address: during a reload the old config's socket and the new one's
// share it (SO_REUSEPORT) until the old one closes.
func settleReload() {
	waitUntil(func() bool {
		seen := map[string]bool{}
		for _, addr := range listening() {
			if seen[addr] {
				return false
			}
			seen[addr] = true
		}
		return true
	})
}

// settleStop waits until the http servers' sockets are closed.
func settleStop() {
	openedMu.Lock()
	defer openedMu.Unlock()
	waitUntil(func() bool {
		now := listening()
		for ino := range opened {
			if _, ok := now[ino]; ok {
				return false
			}
		}
		return true
	})
	clear(opened)
}

func waitUntil(done func() bool) {
	for deadline := time.Now().Add(settleTimeout); !done(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			fmt.Printf("testcaddy: old listening sockets still open after %s: %v\n", settleTimeout, listening())
			return
		}
	}
}
