package openclaw

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGateway(t *testing.T) {
	for _, ok := range []string{
		"ws://127.0.0.1:18789", "ws://[::1]:18789/", "ws://localhost:18789", "ws://10.1.2.3",
		"ws://192.168.1.9:80/ws", "ws://100.101.102.103", "ws://gw.tailnet-abc.ts.net", "ws://box.local",
		"ws://[fd7a:115c:a1e0::1]", "ws://169.254.1.1", "wss://gateway.example.com", "wss://8.8.8.8/x",
	} {
		if _, err := parseGateway(ok); err != nil {
			t.Errorf("parseGateway(%q): %v", ok, err)
		}
	}
	for in, want := range map[string]string{
		"":                                 "required",
		"http://127.0.0.1":                 `scheme "http"`,
		"ws:///path":                       "no host",
		"wss://user:pw@gateway.example":    "credentials in the URL",
		"wss://gateway.example/?token=abc": "query",
		"wss://gateway.example/#x":         "fragment",
		"ws://gateway.example.com":         "plain ws://",
		"ws://8.8.8.8":                     "plain ws://",
		"ws://100.128.0.1":                 "plain ws://", // just outside CGNAT
		"ws://localhost.evil.com":          "plain ws://",
		"ws://[2001:db8::1]":               "plain ws://",
		"::":                               "missing protocol scheme",
	} {
		_, err := parseGateway(in)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "Gateway" || !strings.Contains(err.Error(), want) {
			t.Errorf("parseGateway(%q) = %v, want a Node.Gateway error containing %q", in, err, want)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	hexfp := "3a" + strings.Repeat("0f", 31)
	colons := strings.ToUpper(hexfp[:2])
	for i := 2; i < len(hexfp); i += 2 {
		colons += ":" + hexfp[i:i+2]
	}
	for _, in := range []string{hexfp, strings.ToUpper(hexfp), colons, "sha256:" + hexfp, "SHA256:" + colons, " " + hexfp + "\n"} {
		b, err := parseFingerprint(in)
		if err != nil || len(b) != 32 || b[0] != 0x3a {
			t.Errorf("parseFingerprint(%q) = %x, %v", in, b, err)
		}
	}
	for _, in := range []string{"", hexfp[:62], hexfp + "00", "sha1:" + hexfp, strings.Repeat("zz", 32)} {
		if _, err := parseFingerprint(in); err == nil {
			t.Errorf("parseFingerprint(%q) accepted", in)
		}
	}
}

func TestNodePlatform(t *testing.T) {
	for goos, want := range map[string]string{"linux": "linux", "darwin": "darwin", "windows": "win32", "illumos": "sunos", "freebsd": "freebsd"} {
		if got := nodePlatform(goos); got != want {
			t.Errorf("nodePlatform(%s) = %s, want %s", goos, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	n := &Node{MinBackoff: 100e6, MaxBackoff: 800e6}
	for failures, hi := range []int64{100e6, 200e6, 400e6, 800e6, 800e6, 800e6} {
		for range 50 {
			d := int64(n.backoff(failures))
			if d < hi/2 || d > hi {
				t.Fatalf("backoff(%d) = %d, want in [%d, %d]", failures, d, hi/2, hi)
			}
		}
	}
	if d := (&Node{}).backoff(100); d > 30e9 || d < 15e9 {
		t.Errorf("default backoff after many failures = %v, want 15s..30s", d)
	}
}
