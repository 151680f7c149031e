package pairing

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// fuzzKey is a fixed key so the seeds are valid signed messages.
var fuzzKey = ed25519.NewKeyFromSeed(make([]byte, 32))

var fuzzNow = time.Unix(1_800_000_000, 0)

func FuzzDecodePairRequest(f *testing.F) {
	good, _ := json.Marshal(NewPairRequest(fuzzKey, "laptop", b64.EncodeToString(make([]byte, 32)), fuzzNow))
	for _, s := range []string{string(good), "", "{}", "null", `{"device_id":1}`, `{"name":"\u202e"}`, string(good) + "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePairRequest(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || e.Msg == "" {
				t.Fatalf("decode error is not a 400 *Error: %v", err)
			}
			return
		}
		// Whatever decodes has the documented form, and verifying it never
		// panics; only a genuine signature of fuzzKey verifies.
		if !validDeviceID(p.DeviceID) || ValidName(p.Name) != nil {
			t.Fatalf("accepted malformed request %+v", p)
		}
		if err := p.Verify(fuzzNow); err == nil {
			want := NewPairRequest(fuzzKey, p.Name, p.Nonce, time.UnixMilli(p.SignedAt))
			if p.PublicKey != want.PublicKey || p.Signature != want.Signature {
				t.Fatalf("a signature not made by the key verified: %+v", p)
			}
		}
	})
}

func FuzzDecodePollRequest(f *testing.F) {
	good, _ := json.Marshal(NewPollRequest(fuzzKey, "pr_AAAAAAAAAAAAAAAAAAAAAA", b64.EncodeToString(make([]byte, 32)), fuzzNow))
	for _, s := range []string{string(good), "{}", `{"request_id":"pr_"}`, `{"signed_at":-1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePollRequest(body)
		if err != nil {
			return
		}
		if !validRequestID(p.RequestID) || !validDeviceID(p.DeviceID) {
			t.Fatalf("accepted malformed poll %+v", p)
		}
		_ = p.Verify(fuzzKey.Public().(ed25519.PublicKey), fuzzNow)
	})
}

// FuzzDecodeState: the store file parser refuses or returns a state that
// re-encodes and re-decodes to the same thing.
func FuzzDecodeState(f *testing.F) {
	st := newState()
	pub := fuzzKey.Public().(ed25519.PublicKey)
	st.Devices[DeviceID(pub)] = &Device{ID: DeviceID(pub), Name: "d", PublicKey: b64.EncodeToString(pub), CreatedAt: fuzzNow, TokenHash: hashToken("cgd_x")}
	good, _ := st.encode()
	for _, s := range []string{string(good), `{"version":1}`, `{"version":2}`, `{"version":1,"devices":[null]}`, `{"version":1,"requests":[{}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeState(data)
		if err != nil {
			return
		}
		out, err := s.encode()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := decodeState(out)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v", err)
		}
		if len(s2.Devices) != len(s.Devices) || len(s2.Requests) != len(s.Requests) {
			t.Fatal("round trip lost records")
		}
	})
}

// FuzzCSRF: no token but the one minted for an identity passes for it.
func FuzzCSRF(f *testing.F) {
	s := &Store{}
	tok, _ := s.csrfToken("local", fuzzNow)
	f.Add("local", tok)
	f.Add("user:a", tok)
	f.Add("local", "v1.0.")
	f.Fuzz(func(t *testing.T, identity, token string) {
		if s.checkCSRF(identity, token, fuzzNow) {
			want, _ := s.csrfToken(identity, fuzzNow)
			if token != want {
				t.Fatalf("forged token %q accepted for %q", token, identity)
			}
		}
	})
}
