package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/clawguard/clawguard/wire"
)

// The password cache key is HMAC-SHA256 as crypto/hmac computes it, for
// user names that fit the stack buffer and for longer ones.
func TestPasswordCacheKeyIsHMAC(t *testing.T) {
	s := NewPasswordSet()
	var key [32]byte
	for i := range key {
		key[i] = s.ipad[i] ^ 0x36
		if s.opad[i]^0x5c != key[i] {
			t.Fatalf("ipad and opad disagree about key byte %d", i)
		}
	}
	for i := len(key); i < sha256.BlockSize; i++ {
		if s.ipad[i] != 0x36 || s.opad[i] != 0x5c {
			t.Fatalf("pad byte %d is not the zero key's", i)
		}
	}
	if key == [32]byte{} {
		t.Fatal("the key is all zero")
	}
	hash := []byte("$2a$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234")
	for _, c := range []struct{ user, password string }{
		{"alice", "correct horse"},
		{"", ""},
		{"al", "icepass"}, // same bytes as ("alic", "epass") without the lengths
		{"alic", "epass"},
		{strings.Repeat("u", 600), strings.Repeat("p", 72)}, // over the stack buffer
	} {
		m := hmac.New(sha256.New, key[:])
		m.Write(binary.AppendUvarint(nil, uint64(len(c.user))))
		m.Write(binary.AppendUvarint(nil, uint64(len(c.password))))
		m.Write([]byte(c.user))
		m.Write([]byte(c.password))
		m.Write(hash)
		var want [sha256.Size]byte
		m.Sum(want[:0])
		if got := s.cacheKeyFor(c.user, c.password, hash); got != want {
			t.Errorf("cacheKeyFor(%.10q, %.10q) = %x, want HMAC-SHA256 %x", c.user, c.password, got, want)
		}
	}
	if s.cacheKeyFor("al", "icepass", hash) == s.cacheKeyFor("alic", "epass", hash) {
		t.Error("length prefixes do not separate user from password")
	}
	if NewPasswordSet().ipad == s.ipad {
		t.Error("two sets share a key")
	}
}

// A cached check allocates nothing, and neither does a token match.
func TestHotPathAllocations(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	s := NewPasswordSet()
	s.Add("alice", string(hash))
	if err := s.Check("alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { s.Check("alice", "correct horse") }); n != 0 {
		t.Errorf("cached password check: %v allocations", n)
	}
	var ts TokenSet
	ts.Add("ops", "bench-token-0123456789abcdefghijklmn")
	if n := testing.AllocsPerRun(100, func() { ts.Match("bench-token-0123456789abcdefghijklmn") }); n != 0 {
		t.Errorf("token match: %v allocations", n)
	}
	h := http.Header{"Authorization": {"Bearer bench-token-0123456789abcdefghijklmn"}}
	if n := testing.AllocsPerRun(100, func() { ParseCredential(h) }); n != 0 {
		t.Errorf("parsing a bearer credential: %v allocations", n)
	}
}

func TestMatchIndex(t *testing.T) {
	var s TokenSet
	s.Add("a", "0123456789abcdef-a")
	s.Add("b", "0123456789abcdef-b")
	for want, tok := range []string{"0123456789abcdef-a", "0123456789abcdef-b"} {
		if i, ok := s.MatchIndex(tok); !ok || i != want || s.Name(i) != string(rune('a'+want)) {
			t.Errorf("MatchIndex(%q) = %d, %v", tok, i, ok)
		}
	}
	long := strings.Repeat("x", 2*tokenStackBytes) // hashed from the heap
	if _, ok := s.MatchIndex(long); ok {
		t.Error("unknown long token matched")
	}
	s.Add("long", long)
	if i, ok := s.MatchIndex(long); !ok || s.Name(i) != "long" {
		t.Errorf("long token: %d, %v", i, ok)
	}
	if _, ok := s.MatchIndex(long[:len(long)-1]); ok {
		t.Error("a prefix of the long token matched")
	}
}

// The identity headers are set under their canonical names (the gate writes
// the header map directly), each with its own one-element slice.
func TestSetIdentityHeaderValues(t *testing.T) {
	for _, name := range []string{wire.HeaderIdentity, wire.HeaderMethod, wire.HeaderDevice} {
		if c := textproto.CanonicalMIMEHeaderKey(name); c != name {
			t.Errorf("%q is not canonical (%q)", name, c)
		}
	}
	h := http.Header{}
	SetIdentityHeaders(h, Identity{Method: MethodDevice, Name: "d1"})
	if h.Get(wire.HeaderIdentity) != "device:d1" || h.Get(wire.HeaderMethod) != "device" || h.Get(wire.HeaderDevice) != "d1" {
		t.Fatalf("device headers: %v", h)
	}
	h.Add(wire.HeaderIdentity, "appended")
	h[wire.HeaderMethod][0] = "rewritten"
	if h.Get(wire.HeaderDevice) != "d1" || h.Values(wire.HeaderIdentity)[0] != "device:d1" || len(h.Values(wire.HeaderMethod)) != 1 {
		t.Fatalf("one header's change reached another: %v", h)
	}
	h = http.Header{}
	SetIdentityHeaders(h, Identity{Method: MethodPassword, Name: "alice"})
	if len(h) != 2 || h.Get(wire.HeaderIdentity) != "user:alice" || h.Get(wire.HeaderMethod) != "password" {
		t.Fatalf("password headers: %v", h)
	}
}
