package authn

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestTokenSetMatch(t *testing.T) {
	var s TokenSet
	if err := s.Add("ops", "0123456789abcdef-ops"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("", "0123456789abcdef-anon"); err != nil {
		t.Fatal(err)
	}
	if name, ok := s.Match("0123456789abcdef-ops"); !ok || name != "ops" {
		t.Fatalf("Match = %q, %v", name, ok)
	}
	if name, ok := s.Match("0123456789abcdef-anon"); !ok || len(name) != 8 {
		t.Fatalf("unnamed token gets a fingerprint name, got %q, %v", name, ok)
	}
	for _, bad := range []string{"", "0123456789abcdef-op", "0123456789abcdef-opsx", "0123456789ABCDEF-ops"} {
		if _, ok := s.Match(bad); ok {
			t.Errorf("Match(%q) accepted", bad)
		}
	}
	if err := s.Add("x", ""); err == nil {
		t.Error("empty token accepted")
	}
	if err := s.Add("x", "short"); err == nil {
		t.Error("short token accepted")
	}
	if err := s.Add("again", "0123456789abcdef-ops"); err == nil {
		t.Error("duplicate token accepted")
	}
}

func TestPasswordSetFormatsAndCache(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("hunter2hunter2"), bcrypt.MinCost)
	s := NewPasswordSet()
	if err := s.Add("alice", string(hash)); err != nil {
		t.Fatal(err)
	}
	// caddy hash-password writes the bcrypt hash base64-encoded.
	if err := s.Add("bob", base64.StdEncoding.EncodeToString(hash)); err != nil {
		t.Fatal(err)
	}
	// htpasswd -B writes $2y$.
	if err := s.Add("carol", "$2y$"+string(hash[4:])); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if !s.Verify(u, "hunter2hunter2") {
			t.Errorf("%s: right password refused", u)
		}
		if !s.Verify(u, "hunter2hunter2") {
			t.Errorf("%s: right password refused from cache", u)
		}
		if s.Verify(u, "hunter2hunter3") || s.Verify(u, "") {
			t.Errorf("%s: wrong password accepted", u)
		}
	}
	if s.Verify("mallory", "hunter2hunter2") {
		t.Error("unknown user accepted")
	}
	// The cache must not let one user's password through for another user.
	if s.Verify("alice", "x") {
		t.Error("cache confused")
	}
	for _, bad := range []string{"", "plaintext", "$2a$10$short", base64.StdEncoding.EncodeToString([]byte("nope"))} {
		if err := s.Add("dave"+bad, bad); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
	if err := s.Add("al:ice", string(hash)); err == nil {
		t.Error("user with ':' accepted")
	}
}

func TestPasswordCacheHoldsNoPlaintext(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	s := NewPasswordSet()
	s.Add("alice", string(hash))
	s.Verify("alice", "correct horse")
	if len(s.cache) != 1 {
		t.Fatalf("cache has %d entries, want 1", len(s.cache))
	}
	for k := range s.cache {
		if strings.Contains(string(k[:]), "correct") {
			t.Fatal("plaintext in cache key")
		}
	}
}

func TestParseCredential(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pa:ss"))
	cases := []struct {
		name    string
		headers map[string]string
		want    Credential
		problem bool
	}{
		{"none", nil, Credential{}, false},
		{"bearer", map[string]string{"Authorization": "Bearer abc"}, Credential{Scheme: "bearer", Token: "abc"}, false},
		{"bearer lowercase scheme", map[string]string{"Authorization": "bearer abc"}, Credential{Scheme: "bearer", Token: "abc"}, false},
		{"basic with colon in password", map[string]string{"Authorization": basic}, Credential{Scheme: "basic", User: "alice", Password: "pa:ss"}, false},
		{"basic bad base64", map[string]string{"Authorization": "Basic !!!"}, Credential{}, true},
		{"basic no colon", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}, Credential{}, true},
		{"bearer empty", map[string]string{"Authorization": "Bearer "}, Credential{}, true},
		{"bearer with space", map[string]string{"Authorization": "Bearer a b"}, Credential{}, true},
		{"no scheme", map[string]string{"Authorization": "abc"}, Credential{}, true},
		{"other scheme", map[string]string{"Authorization": "Digest x"}, Credential{}, true},
		{"subprotocol", map[string]string{"Sec-WebSocket-Protocol": "chat.v1, bearer.tok123"}, Credential{Scheme: "bearer", Token: "tok123", FromSubprotocol: true}, false},
		{"subprotocol empty", map[string]string{"Sec-WebSocket-Protocol": "bearer."}, Credential{}, true},
	}
	for _, c := range cases {
		h := http.Header{}
		for k, v := range c.headers {
			h.Set(k, v)
		}
		got, problem := ParseCredential(h)
		if got != c.want || (problem != "") != c.problem {
			t.Errorf("%s: got %+v, problem %q", c.name, got, problem)
		}
	}
}

func TestStripSubprotocolToken(t *testing.T) {
	h := http.Header{}
	h.Set("Sec-WebSocket-Protocol", "bearer.secret, chat.v1")
	StripSubprotocolToken(h)
	if got := h.Get("Sec-WebSocket-Protocol"); got != "chat.v1" {
		t.Fatalf("got %q", got)
	}
	h.Set("Sec-WebSocket-Protocol", "bearer.secret")
	StripSubprotocolToken(h)
	if _, ok := h["Sec-Websocket-Protocol"]; ok {
		t.Fatal("header left with only the token")
	}
}

func TestCredentialInURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"/ws?token=abc":          true,
		"/ws?TOKEN=abc":          true,
		"/ws?x=1&access_token=a": true,
		"/ws?password=":          true,
		"/ws?session=abc":        false,
		"/ws":                    false,
		"http://u:p@h/":          true,
	} {
		u, _ := url.Parse(raw)
		if got := CredentialInURL(u) != ""; got != want {
			t.Errorf("%s: %v, want %v", raw, got, want)
		}
	}
}

func TestStripIdentityHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("X-Clawguard-Identity", "token:admin")
	h["x-clawguard-method"] = []string{"local"} // raw, non-canonical key
	h.Set("X-Other", "keep")
	StripIdentityHeaders(h)
	if len(h) != 1 || h.Get("X-Other") != "keep" {
		t.Fatalf("headers after strip: %v", h)
	}
}

func TestLocalPolicy(t *testing.T) {
	p, err := NewLocalPolicy([]string{"http://localhost:3000"})
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	cases := []struct {
		name    string
		peer    netip.Addr
		host    string
		headers map[string]string
		local   bool
	}{
		{"plain local CLI", lo, "127.0.0.1:18789", nil, true},
		{"ipv6 loopback", netip.IPv6Loopback(), "[::1]:18789", nil, true},
		{"localhost name", lo, "localhost:18789", nil, true},
		{"remote peer", netip.MustParseAddr("192.168.1.5"), "127.0.0.1:18789", nil, false},
		{"x-forwarded-for", lo, "127.0.0.1:18789", map[string]string{"X-Forwarded-For": "203.0.113.9"}, false},
		{"x-forwarded-host", lo, "127.0.0.1:18789", map[string]string{"X-Forwarded-Host": "a"}, false},
		{"forwarded", lo, "127.0.0.1:18789", map[string]string{"Forwarded": "for=203.0.113.9"}, false},
		{"x-real-ip", lo, "127.0.0.1:18789", map[string]string{"X-Real-IP": "203.0.113.9"}, false},
		{"same origin", lo, "127.0.0.1:18789", map[string]string{"Origin": "http://127.0.0.1:18789"}, true},
		{"allowed origin", lo, "127.0.0.1:18789", map[string]string{"Origin": "http://localhost:3000"}, true},
		{"foreign origin", lo, "127.0.0.1:18789", map[string]string{"Origin": "https://evil.example"}, false},
		{"null origin", lo, "127.0.0.1:18789", map[string]string{"Origin": "null"}, false},
		{"other loopback port", lo, "127.0.0.1:18789", map[string]string{"Origin": "http://127.0.0.1:8080"}, false},
		{"dns rebinding", lo, "evil.example:18789", map[string]string{"Origin": "http://evil.example:18789"}, false},
		{"dns rebinding no origin", lo, "evil.example:18789", nil, false},
		{"cross-site no origin", lo, "127.0.0.1:18789", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"typed url", lo, "127.0.0.1:18789", map[string]string{"Sec-Fetch-Site": "none"}, true},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "http://"+c.host+"/", nil)
		r.Host = c.host
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		if got, why := p.IsLocal(r, c.peer); got != c.local {
			t.Errorf("%s: local=%v (%s), want %v", c.name, got, why, c.local)
		}
	}
	if _, err := NewLocalPolicy([]string{"not an origin"}); err == nil {
		t.Error("bad origin accepted")
	}
}

func TestTrustedProxy(t *testing.T) {
	pfx, _ := ParsePrefix("10.0.0.0/8")
	p := &TrustedProxy{Prefixes: []netip.Prefix{pfx}, UserHeader: "X-Remote-User", RequireHeaders: []string{"X-Proxy-Secret"}, AllowUsers: []string{"alice"}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if !p.Trusts(netip.MustParseAddr("10.1.2.3")) || !p.Trusts(netip.MustParseAddr("::ffff:10.1.2.3")) {
		t.Error("proxy address not trusted")
	}
	if p.Trusts(netip.MustParseAddr("11.0.0.1")) || p.Trusts(netip.MustParseAddr("127.0.0.1")) {
		t.Error("other address trusted")
	}
	h := http.Header{}
	if _, o := p.Assert(h); o != ProxyNoAssertion {
		t.Error("no header should be no assertion")
	}
	h.Set("X-Remote-User", "alice")
	if _, o := p.Assert(h); o != ProxyIncomplete {
		t.Error("missing required header accepted")
	}
	h.Set("X-Proxy-Secret", "  ")
	if _, o := p.Assert(h); o != ProxyIncomplete {
		t.Error("blank required header accepted")
	}
	h.Set("X-Proxy-Secret", "s")
	if u, o := p.Assert(h); o != ProxyAccepted || u != "alice" {
		t.Errorf("got %q %v", u, o)
	}
	h.Set("X-Remote-User", "mallory")
	if _, o := p.Assert(h); o != ProxyForbidden {
		t.Error("user outside allow_users accepted")
	}

	bad := []TrustedProxy{
		{UserHeader: "X-U"},
		{Prefixes: []netip.Prefix{pfx}},
		{Prefixes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, UserHeader: "X-U"},
		{Prefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, UserHeader: "X-U"},
		{Prefixes: []netip.Prefix{pfx}, UserHeader: "X-Clawguard-Identity"},
	}
	for i, b := range bad {
		if err := b.Validate(); err == nil {
			t.Errorf("bad rule %d accepted", i)
		}
	}
	lo := TrustedProxy{Prefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, UserHeader: "X-U", AllowLoopback: true}
	if err := lo.Validate(); err != nil || !lo.Trusts(netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("allow_loopback: %v", err)
	}
	if _, err := ParsePrefix("10.0.0.0/33"); err == nil {
		t.Error("bad CIDR accepted")
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(RateLimit{Attempts: 3, Window: time.Minute, Lockout: 5 * time.Minute})
	now := time.Unix(1000, 0)
	a := Key("s", ClassDirect, netip.MustParseAddr("192.0.2.1"))
	for i := 0; i < 2; i++ {
		if locked, _ := l.Fail(a, now); locked {
			t.Fatalf("locked after %d failures", i+1)
		}
	}
	if locked, _ := l.Locked(a, now); locked {
		t.Fatal("locked before the limit")
	}
	if locked, d := l.Fail(a, now); !locked || d != 5*time.Minute {
		t.Fatalf("third failure: locked=%v for %v", locked, d)
	}
	if locked, d := l.Locked(a, now.Add(time.Minute)); !locked || d != 4*time.Minute {
		t.Fatalf("during lockout: %v %v", locked, d)
	}
	if locked, _ := l.Locked(Key("s", ClassDirect, netip.MustParseAddr("192.0.2.2")), now); locked {
		t.Fatal("other key locked")
	}
	if locked, _ := l.Locked(a, now.Add(5*time.Minute)); locked {
		t.Fatal("still locked after lockout")
	}
	// Failures spread wider than the window never lock.
	for i := 0; i < 10; i++ {
		if locked, _ := l.Fail(Key("s", ClassDirect, netip.MustParseAddr("192.0.2.3")), now.Add(time.Duration(i)*31*time.Second)); locked {
			t.Fatalf("slow failures locked at %d", i)
		}
	}
	l.Sweep(now.Add(time.Hour))
	for i := range l.shards {
		if n := len(l.shards[i].entries); n != 0 {
			t.Fatalf("sweep left %d entries", n)
		}
	}
}

func TestLimitKey(t *testing.T) {
	ip := netip.MustParseAddr
	if Key("s", ClassDirect, ip("2001:db8::1")) != Key("s", ClassDirect, ip("2001:db8::2")) {
		t.Error("same /64 keyed apart")
	}
	if Key("s", ClassDirect, ip("::1")) == Key("s", ClassDirect, ip("::2")) {
		t.Error("loopback IPv6 keyed as a /64")
	}
	if Key("s", ClassDirect, ip("::ffff:10.0.0.1")) != Key("s", ClassDirect, ip("10.0.0.1")) {
		t.Error("mapped address not unmapped")
	}
	local := Key("s", ClassLocal, ip("127.0.0.1"))
	for _, other := range []LimitKey{
		Key("s", ClassForeign, ip("127.0.0.1")),
		Key("s", ClassRelayed, ip("127.0.0.1")),
		Key("s", ClassPairing, ip("127.0.0.1")),
		Key("other-site", ClassLocal, ip("127.0.0.1")),
	} {
		if other == local {
			t.Errorf("%+v shares the local user's key", other)
		}
	}
}

// TestLimiterFloodSparesLockouts fills a shard far past its bound with
// single failures from new keys: the table stays bounded and the locked-out
// client stays locked (a flood must not buy an attacker a fresh start).
func TestLimiterFloodSparesLockouts(t *testing.T) {
	l := NewLimiter(RateLimit{Attempts: 3, Window: time.Minute, Lockout: 5 * time.Minute})
	now := time.Unix(1000, 0)
	attacker := Key("s", ClassDirect, netip.MustParseAddr("198.51.100.7"))
	for range 3 {
		l.Fail(attacker, now)
	}
	for i := range 2 * limiterMaxKeys {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Fail(Key("s", ClassDirect, a), now.Add(time.Second))
	}
	total := 0
	for i := range l.shards {
		total += len(l.shards[i].entries)
	}
	if total > limiterMaxKeys {
		t.Errorf("table holds %d entries, bound %d", total, limiterMaxKeys)
	}
	if locked, _ := l.Locked(attacker, now.Add(2*time.Second)); !locked {
		t.Error("the flood of new keys freed a locked-out client")
	}
}
