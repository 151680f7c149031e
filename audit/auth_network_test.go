package audit_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawguard/clawguard/audit"
)

func TestCheckAuthCompleteness(t *testing.T) {
	f := newFixture(t)
	if err := f.vault.Set("short_token", []byte("only-19-characters!")); err != nil {
		t.Fatal(err)
	}
	f.caddyfile(`http://:8080 {
	respond "open"
	reverse_proxy 127.0.0.1:18790
}

http://:18789 {
	clawguard {
		token {vault.short_token} {vault.missing_entry}
		password weak $2y$04$X/lw04zQayR6AEUv3GmT/.5AtrXhSeu5cXqfmQ6FIT0NS96oxVWt2
		trusted_proxy 0.0.0.0/1 {
			user_header X-User
			allow_loopback
		}
		rate_limit off
	}
	reverse_proxy 127.0.0.1:18790
}

http://:9000 {
	bind 127.0.0.1
	clawguard {
		local_trust off
		pairing off
	}
	respond "nobody"
}
`)
	fs := f.check("auth.completeness")
	wantFinding(t, fs, audit.SeverityCritical, ":8080", "without the gate or any authentication")
	wantFinding(t, fs, audit.SeverityWarn, "token 1 ({vault.short_token}) is only 19 characters")
	wantFinding(t, fs, audit.SeverityWarn, "token 2 ({vault.missing_entry}) does not resolve")
	wantFinding(t, fs, audit.SeverityWarn, "user weak has cost 4")
	wantFinding(t, fs, audit.SeverityCritical, "trusts 0.0.0.0/1")
	wantFinding(t, fs, audit.SeverityWarn, "allow_loopback")
	rl := wantFinding(t, fs, audit.SeverityWarn, "rate limiting is off")
	if !rl.Fixable || rl.Line != 14 {
		t.Fatalf("rate_limit off is fixable, line 14: %+v", rl)
	}
	wantFinding(t, fs, audit.SeverityWarn, "local trust is on while the gate listens on :18789")
	wantFinding(t, fs, audit.SeverityWarn, "lets nobody in")

	// A loopback site proxying without the gate is ClawJacked's setup.
	f = newFixture(t)
	f.caddyfile("http://:18789 {\n\tbind 127.0.0.1\n\treverse_proxy 127.0.0.1:18790\n}\n")
	wantFinding(t, f.check("auth.completeness"), audit.SeverityWarn, "ClawJacked")

	f = newFixture(t)
	f.cleanSetup()
	wantNone(t, f.check("auth.completeness"))
}

// TestCheckAuthHMACKeys reads HMAC keys from a Caddy JSON config (the gate
// option may be written as a list or a map).
func TestCheckAuthHMACKeys(t *testing.T) {
	f := newFixture(t)
	if err := f.vault.Set("hmac_ops", []byte("too-short-key")); err != nil {
		t.Fatal(err)
	}
	gate := func(hmac string) string {
		return `{"apps": {"http": {"servers": {"gw": {"listen": ["127.0.0.1:18789"], "routes": [{"handle": [
  {"handler": "clawguard", "tokens": ["{vault.gateway_token}"], "hmac": ` + hmac + `},
  {"handler": "reverse_proxy", "upstreams": [{"dial": "127.0.0.1:18790"}]}]}]}}}}}`
	}
	f.vault.Set("gateway_token", []byte(goodToken))
	f.opts.Config = f.write(f.conf, "caddy.json", gate(`[{"key_id": "ops", "secret": "{vault.hmac_ops}"}]`), 0o600)
	wantFinding(t, f.check("auth.completeness"), audit.SeverityCritical, "HMAC key ops", "13 bytes", "at least 32")
	f.write(f.conf, "caddy.json", gate(`{"ops": {"secret": "{vault.gateway_token}"}}`), 0o600)
	wantNone(t, f.check("auth.completeness"))
}

// procLine renders a /proc/net/tcp line for a listening socket.
func procLine(t *testing.T, i int, addr string, uid, inode int) string {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	return fmt.Sprintf("%4d: %s:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000 %5d        0 %d 1 0000000000000000 100 0 0 10 0\n",
		i, audit.ProcAddrForTest(ap.Addr()), ap.Port(), uid, inode)
}

func TestCheckOpenInterfaces(t *testing.T) {
	f := newFixture(t)
	f.caddyfile(`{
	admin 0.0.0.0:2019
}
http://:18789 {
	clawguard {
		token {vault.gateway_token}
	}
	reverse_proxy 127.0.0.1:18790
}
`)
	tcp := procLine(t, 0, "0.0.0.0:2019", 0, 101) +
		procLine(t, 1, "0.0.0.0:18790", 1000, 102) +
		procLine(t, 2, "0.0.0.0:18789", 0, 103) +
		procLine(t, 3, "192.0.2.9:5432", 999, 104) +
		procLine(t, 4, "127.0.0.1:6379", 999, 105) +
		procLine(t, 5, "100.101.102.103:443", 0, 106) +
		procLine(t, 6, "0.0.0.0:22", 0, 107)
	tcp6 := procLine(t, 0, "[::]:22", 0, 108) + procLine(t, 1, "[fd7a:115c:a1e0::1]:443", 0, 109) + procLine(t, 2, "[::1]:8080", 0, 110)
	writeProcNet(t, f.opts.ProcRoot, tcp, tcp6)
	f.opts.AllowPorts = []int{22}
	fs := f.check("network.open_interfaces")
	wantFinding(t, fs, audit.SeverityCritical, "admin endpoint listens on 0.0.0.0:2019")
	wantFinding(t, fs, audit.SeverityCritical, "admin port 2019 listens on 0.0.0.0:2019")
	wantFinding(t, fs, audit.SeverityCritical, "gateway's port 18790 (127.0.0.1:18790)", "around the gate")
	wantFinding(t, fs, audit.SeverityWarn, "(with the gate) listens on :18789")
	wantFinding(t, fs, audit.SeverityWarn, "TCP port 5432 listens on 192.0.2.9:5432 (uid 999)")
	wantFinding(t, fs, audit.SeverityInfo, "TCP port 22 listens on 0.0.0.0:22, [::]:22", "--allow-port")
	for _, fd := range fs {
		for _, private := range []string{"6379", "100.101.102.103", "fd7a:115c", "8080"} {
			if strings.Contains(fd.Finding, private) {
				t.Fatalf("loopback and tailnet listeners are fine: %+v", fd)
			}
		}
	}
	if n := strings.Count(dump(fs), "18789"); n != 1 {
		t.Fatalf("the gate's public port is reported once (from the config), got %d:\n%s", n, dump(fs))
	}

	f = newFixture(t)
	f.cleanSetup()
	writeProcNet(t, f.opts.ProcRoot, procLine(t, 0, "127.0.0.1:18789", 0, 1)+procLine(t, 1, "127.0.0.1:2019", 0, 2)+procLine(t, 2, "100.64.0.7:443", 0, 3),
		procLine(t, 0, "[::1]:18790", 0, 4))
	wantNone(t, f.check("network.open_interfaces"))
}

// nonLoopbackIP returns an address of this machine beyond loopback.
func nonLoopbackIP(t *testing.T) netip.Addr {
	t.Helper()
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		if ip := p.Addr(); !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && ip.Is4() {
			return ip
		}
	}
	t.Skip("this machine has no IPv4 address beyond loopback")
	return netip.Addr{}
}

// TestCheckOpenInterfacesRealSockets opens real listeners and reads the
// real /proc/net/tcp: one on a non-loopback address is found, with this
// process named; one on loopback is not.
func TestCheckOpenInterfacesRealSockets(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	ip := nonLoopbackIP(t)
	pub, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	loop, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	pubPort := pub.Addr().(*net.TCPAddr).Port
	loopPort := loop.Addr().(*net.TCPAddr).Port

	f := newFixture(t)
	f.opts.ProcRoot = "/proc"
	fs := f.check("network.open_interfaces")
	fd := wantFinding(t, fs, audit.SeverityWarn, fmt.Sprintf("TCP port %d listens on %s:%d", pubPort, ip, pubPort))
	if !strings.Contains(fd.Finding, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("the listener's process is named: %s", fd.Finding)
	}
	for _, fd := range fs {
		if strings.Contains(fd.Finding, fmt.Sprintf("port %d ", loopPort)) {
			t.Fatalf("a loopback listener was reported: %+v", fd)
		}
	}
	f.opts.AllowPorts = []int{pubPort}
	wantFinding(t, f.check("network.open_interfaces"), audit.SeverityInfo, fmt.Sprintf("TCP port %d", pubPort))

	pub.Close()
	for _, fd := range f.check("network.open_interfaces") {
		if strings.Contains(fd.Finding, fmt.Sprintf("port %d ", pubPort)) {
			t.Fatalf("a closed listener is still reported: %+v", fd)
		}
	}
}

func TestProcNetMissing(t *testing.T) {
	f := newFixture(t)
	f.opts.ProcRoot = filepath.Join(t.TempDir(), "noproc")
	if st := checkStatus(t, f.run(), "network.open_interfaces"); st.Status != audit.StatusSkipped {
		t.Fatalf("without /proc the socket check is skipped, not passed: %+v", st)
	}
}
