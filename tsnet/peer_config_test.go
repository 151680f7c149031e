package tsnet_test

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"tailscale.com/net/tsaddr"

	"github.com/clawguard/clawguard/tsnet"
)

func TestValidPeerAddress(t *testing.T) {
	for _, ok := range []string{"node1:18791", "node1.tail-scale.ts.net:80", "node1.tail-scale.ts.net.:80",
		"100.64.0.1:1", "100.127.255.254:65535", "[fd7a:115c:a1e0::1]:18791", "Side-2:8080"} {
		if err := tsnet.ValidPeerAddress(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for addr, want := range map[string]string{
		"http://node1:80":        "without a scheme",
		"node1:80/healthz":       "without a path",
		"user@node1:80":          "without a path, query or user",
		"node1":                  "want host:port",
		":80":                    "MagicDNS name",
		"node1:0":                "port of 1-65535",
		"node1:http":             "port of 1-65535",
		"192.168.1.10:80":        "192.168.1.10 is not a tailnet address",
		"100.128.0.1:80":         "100.128.0.1 is not a tailnet address",
		"[fe80::1%eth0]:80":      "is not a tailnet address",
		"[fd7a:115c:a1e1::1]:80": "is not a tailnet address",
		"localhost:80":           "localhost is this machine",
		"a.localhost:80":         "localhost is this machine",
		"10.1:80":                "neither a tailnet IP nor a MagicDNS name",
		"-node:80":               "MagicDNS name",
		"node..x:80":             "MagicDNS name",
		"tskey-auth-SECRET_x:80": "MagicDNS name",
	} {
		err := tsnet.ValidPeerAddress(addr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", addr, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: the error repeats the address: %v", addr, err)
		}
	}
}

// FuzzValidPeerAddress: an accepted address is host:port with a port of
// 1-65535 and a tailnet IP or a DNS name as host; a refusal never repeats
// anything but an IP.
func FuzzValidPeerAddress(f *testing.F) {
	for _, seed := range []string{"node1:18791", "[fd7a:115c:a1e0::1]:1", "100.64.0.1:80", "10.0.0.1:80",
		"http://x:1", "a.b.c.:65535", "[::1]:80", "x:0", "tskey-auth-k:1", "%:1", "[fd7a:115c:a1e0::1%x]:1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		err := tsnet.ValidPeerAddress(addr)
		if err != nil {
			if len(addr) > 8 && strings.Contains(err.Error(), addr) {
				t.Fatalf("refusal repeats the address: %v", err)
			}
			return
		}
		host, port, serr := net.SplitHostPort(addr)
		if serr != nil {
			t.Fatalf("accepted %q, not host:port: %v", addr, serr)
		}
		if p, perr := strconv.Atoi(port); perr != nil || p < 1 || p > 65535 {
			t.Fatalf("accepted %q with port %q", addr, port)
		}
		if ip, perr := netip.ParseAddr(host); perr == nil {
			if !tsaddr.IsTailscaleIP(ip) || ip.Zone() != "" {
				t.Fatalf("accepted %q, a non-tailnet IP", addr)
			}
			return
		}
		if strings.ContainsAny(host, "/?#@:%[] \t") || host == "" || strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
			t.Fatalf("accepted %q with host %q", addr, host)
		}
	})
}
