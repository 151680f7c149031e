package main

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"tailscale.com/net/stun"
)

// TestRunRefuses: bad input is an error naming what is wrong, before
// anything listens.
func TestRunRefuses(t *testing.T) {
	key := func(string) string { return "k" }
	for _, tc := range []struct {
		name   string
		args   []string
		getenv func(string) string
		want   string
	}{
		{"no auth key", nil, func(string) string { return "" }, "$TAILNET_LAB_AUTH_KEY is empty"},
		{"bad tag", []string{"--tags", "tag:ok,nottag"}, key, `--tags: "nottag": want tag:<name>`},
		{"empty tag name", []string{"--tags", "tag:"}, key, `--tags: "tag:"`},
		{"IPv6 addr", []string{"--addr", "::1"}, key, `--addr "::1": want an IPv4 address`},
		{"not an addr", []string{"--addr", "lab"}, key, `--addr "lab"`},
		{"argument", []string{"extra"}, key, `unexpected arguments ["extra"]`},
		{"unknown flag", []string{"--auth-key", "k"}, key, "flag provided but not defined"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(tc.args, tc.getenv, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("%s: printed %q: nothing may claim to listen", tc.name, stdout.String())
		}
	}
}

// TestLab: the control server answers at the URL it hands out, the DERP
// map names the lab's address and ports, DERP speaks TLS there and STUN
// answers with the sender's address.
func TestLab(t *testing.T) {
	addr := netip.MustParseAddr("127.0.0.1")
	l, err := start(config{addr: addr, authKey: "k", tags: []string{"tag:a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()

	res, err := http.Get(l.controlURL + "/key?v=130")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("control server /key: %d, want 200", res.StatusCode)
	}

	ctl := l.control.Handler.(interface{ BaseURL() string })
	if ctl.BaseURL() != l.controlURL {
		t.Errorf("control BaseURL %q, want %q", ctl.BaseURL(), l.controlURL)
	}
	n := l.relay.derpMap().Regions[1].Nodes[0]
	if n.IPv4 != "127.0.0.1" || n.DERPPort != int(l.derpAddr.Port()) || n.STUNPort != int(l.stunAddr.Port()) {
		t.Errorf("DERP map node %+v does not name %s and %s", n, l.derpAddr, l.stunAddr)
	}

	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.derpAddr.String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS to DERP at %s: %v", l.derpAddr, err)
	}
	conn.Close()

	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	tx := stun.NewTxID()
	if _, err := pc.WriteToUDPAddrPort(stun.Request(tx), l.stunAddr); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	nr, err := pc.Read(buf)
	if err != nil {
		t.Fatalf("STUN at %s: %v", l.stunAddr, err)
	}
	gotTx, mapped, err := stun.ParseResponse(buf[:nr])
	if err != nil || gotTx != tx || mapped != pc.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Errorf("STUN response: tx %v (want %v), address %v (want %v), %v", gotTx, tx, mapped, pc.LocalAddr(), err)
	}
}
