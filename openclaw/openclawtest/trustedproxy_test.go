package openclawtest

import (
	"net/http"
	"testing"
)

// TestTrustedProxyRules: each of OpenClaw's trusted-proxy refusals, by the
// request that triggers it.
func TestTrustedProxyRules(t *testing.T) {
	tp := &TrustedProxy{Proxies: []string{"10.0.0.0/8", "192.168.1.5"}, UserHeader: "x-forwarded-user",
		RequiredHeaders: []string{"x-forwarded-proto"}, AllowUsers: []string{"alice", "bob"}}
	good := map[string]string{"X-Forwarded-User": "alice", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
	with := func(remote string, set map[string]string, drop ...string) *http.Request {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		for k, v := range good {
			r.Header.Set(k, v)
		}
		for k, v := range set {
			r.Header.Set(k, v)
		}
		for _, k := range drop {
			r.Header.Del(k)
		}
		return r
	}
	for _, tc := range []struct {
		name, want string
		r          *http.Request
	}{
		{"trusted CIDR", "", with("10.9.8.7:4000", nil)},
		{"trusted address", "", with("192.168.1.5:4000", nil)},
		{"IPv4-mapped trusted", "", with("[::ffff:10.1.1.1]:4000", nil)},
		{"untrusted peer", "trusted_proxy_untrusted_source", with("192.168.1.6:4000", nil)},
		{"loopback peer with headers, untrusted", "proxy_attribution_required", with("127.0.0.1:4000", nil)},
		{"no forwarded client", "proxy_attribution_required", with("10.0.0.2:4000", nil, "X-Forwarded-For")},
		{"forwarded chain of proxies only", "proxy_attribution_required", with("10.0.0.2:4000", map[string]string{"X-Forwarded-For": "10.0.0.3, 127.0.0.1"})},
		{"spoofed leftmost hop", "", with("10.0.0.2:4000", map[string]string{"X-Forwarded-For": "1.2.3.4, 198.51.100.2, 10.0.0.3"})},
		{"required header missing", "trusted_proxy_missing_header_x-forwarded-proto", with("10.0.0.2:4000", nil, "X-Forwarded-Proto")},
		{"user missing", "trusted_proxy_user_missing", with("10.0.0.2:4000", nil, "X-Forwarded-User")},
		{"user blank", "trusted_proxy_user_missing", with("10.0.0.2:4000", map[string]string{"X-Forwarded-User": "  "})},
		{"user not allowed", "trusted_proxy_user_not_allowed", with("10.0.0.2:4000", map[string]string{"X-Forwarded-User": "mallory"})},
		{"bad remote", "trusted_proxy_untrusted_source", with("nonsense", nil)},
	} {
		user, reason := tp.authorize(tc.r)
		if reason != tc.want || (reason == "" && user != "alice") {
			t.Errorf("%s: user %q reason %q, want reason %q", tc.name, user, reason, tc.want)
		}
	}

	lo := &TrustedProxy{Proxies: []string{"127.0.0.1"}, UserHeader: "x-forwarded-user"}
	if _, reason := lo.authorize(with("127.0.0.1:1", nil)); reason != "trusted_proxy_loopback_source" {
		t.Errorf("loopback proxy without allowLoopback: %q", reason)
	}
	lo.AllowLoopback = true
	if user, reason := lo.authorize(with("127.0.0.1:1", nil)); reason != "" || user != "alice" {
		t.Errorf("loopback proxy with allowLoopback: %q %q", user, reason)
	}
	direct := &http.Request{RemoteAddr: "127.0.0.1:1", Header: http.Header{"X-Forwarded-User": {"alice"}}}
	if _, reason := lo.authorize(direct); reason != "proxy_attribution_required" {
		t.Errorf("a local process naming a user without forwarding headers: %q", reason)
	}
	if _, reason := (&TrustedProxy{UserHeader: "u"}).authorize(with("10.0.0.2:1", nil)); reason != "trusted_proxy_no_proxies_configured" {
		t.Errorf("no proxies: %q", reason)
	}
	if _, err := New(Options{Token: "t", TrustedProxy: lo}); err == nil {
		t.Error("token with trusted-proxy accepted")
	}
	if _, err := New(Options{TrustedProxy: &TrustedProxy{Proxies: []string{"10.0.0.0/99"}, UserHeader: "u"}}); err == nil {
		t.Error("a bad proxy CIDR accepted")
	}
}
