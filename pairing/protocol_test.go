package pairing

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodePairRequestErrorsNameTheField(t *testing.T) {
	k := testKey(t)
	now := time.Now()
	good := NewPairRequest(k, "laptop", b64.EncodeToString(make([]byte, 32)), now)
	mutate := func(f func(m map[string]any)) string {
		b, _ := json.Marshal(good)
		var m map[string]any
		json.Unmarshal(b, &m)
		f(m)
		out, _ := json.Marshal(m)
		return string(out)
	}
	cases := map[string]struct{ body, want string }{
		"empty":             {"", "empty body"},
		"not an object":     {"[]", "want a JSON"},
		"trailing data":     {mutate(func(map[string]any) {}) + "{}", "trailing data"},
		"unknown field":     {mutate(func(m map[string]any) { m["admin"] = true }), `unknown field "admin"`},
		"uppercase id":      {mutate(func(m map[string]any) { m["device_id"] = strings.ToUpper(good.DeviceID) }), "device_id"},
		"padded key":        {mutate(func(m map[string]any) { m["public_key"] = good.PublicKey + "=" }), "public_key"},
		"short key":         {mutate(func(m map[string]any) { m["public_key"] = "AAAA" }), "public_key: 3 bytes"},
		"signed_at string":  {mutate(func(m map[string]any) { m["signed_at"] = "1" }), `field "signed_at"`},
		"signed_at float":   {mutate(func(m map[string]any) { m["signed_at"] = 1.5 }), "signed_at"},
		"signed_at zero":    {mutate(func(m map[string]any) { m["signed_at"] = 0 }), "signed_at"},
		"control in name":   {mutate(func(m map[string]any) { m["name"] = "a\nb" }), "control character"},
		"bidi in name":      {mutate(func(m map[string]any) { m["name"] = "abc\u202Egpj.exe" }), "control character"},
		"name too long":     {mutate(func(m map[string]any) { m["name"] = strings.Repeat("x", 65) }), "longer than 64"},
		"name with spaces":  {mutate(func(m map[string]any) { m["name"] = " x" }), "leading or trailing"},
		"nonce too short":   {mutate(func(m map[string]any) { m["nonce"] = "AAAA" }), "nonce"},
		"signature missing": {mutate(func(m map[string]any) { delete(m, "signature") }), "signature"},
		"huge body":         {`{"name":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, "larger than"},
	}
	for name, c := range cases {
		_, err := DecodePairRequest([]byte(c.body))
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Msg, c.want) {
			t.Errorf("%s: %v, want 400 mentioning %q", name, err, c.want)
		}
	}
	b, _ := json.Marshal(good)
	p, err := DecodePairRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(now); err != nil {
		t.Fatalf("valid request: %v", err)
	}
}

func TestPairSignatureCoversEveryField(t *testing.T) {
	k := testKey(t)
	now := time.Now()
	nonce := b64.EncodeToString(make([]byte, 32))
	for name, f := range map[string]func(p *PairRequest){
		"name":      func(p *PairRequest) { p.Name = "other" },
		"nonce":     func(p *PairRequest) { p.Nonce = b64.EncodeToString(append(make([]byte, 31), 1)) },
		"signed_at": func(p *PairRequest) { p.SignedAt++ },
		"key": func(p *PairRequest) {
			*p = *NewPairRequest(testKey(t), p.Name, p.Nonce, now)
			p.Signature = NewPairRequest(k, p.Name, p.Nonce, now).Signature
		},
	} {
		p := NewPairRequest(k, "laptop", nonce, now)
		f(p)
		if err := p.Verify(now); err == nil {
			t.Errorf("changing %s kept the signature valid", name)
		}
	}
	poll := NewPollRequest(k, newRequestID(), nonce, now)
	if err := poll.Verify(k.Public().(ed25519.PublicKey), now); err != nil {
		t.Fatalf("valid poll: %v", err)
	}
	poll.RequestID = newRequestID()
	if err := poll.Verify(k.Public().(ed25519.PublicKey), now); err == nil {
		t.Fatal("poll signature does not cover the request id")
	}
	// A pair signature is never a poll signature (domain separation).
	if (&PairRequest{}).SignedMessage()[:17] == (&PollRequest{}).SignedMessage()[:17] {
		t.Fatal("pair and poll messages share a prefix")
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"laptop", "Büro-Mac (2)", "手机", "a|b", strings.Repeat("é", 64)} {
		if err := ValidName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " a", "a ", "a\tb", "a\x00", "\xff", "a\u2066b", "a\u2028b", strings.Repeat("x", 65)} {
		if ValidName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
