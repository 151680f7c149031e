package httpsig

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clawguard/clawguard/httpsig/sfv"
)

var knownCodes = map[string]bool{
	CodeSignatureMissing: true, CodeSignatureMalformed: true, CodeSignatureAmbiguous: true,
	CodeUnknownKey: true, CodeBadAlg: true, CodeBadSignature: true, CodeCoverage: true,
	CodeCreatedMissing: true, CodeNonceMissing: true, CodeExpired: true, CodeFuture: true,
	CodeReplay: true, CodeReplayCacheFull: true, CodeDigestMissing: true, CodeDigestMalformed: true,
	CodeDigestMismatch: true, CodeBodyTooLarge: true, CodeBodyUnreadable: true,
}

func addSignatureSeeds(f *testing.F) {
	f.Add(`sig1=("@method" "@target-uri" "content-digest");created=1618884473;nonce="n";keyid="client";alg="hmac-sha256"`, `sig1=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`)
	f.Add(`sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`, `sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`)
	f.Add(`sig1=(), sig2=("@method");tag="x"`, `sig1=::, sig2=:AA==:`)
	f.Add(`sig1=("@method"), sig1=("@path")`, `sig1=::`)
	f.Add(`sig1=("@method" "x-a";sf "@query-param";name="q");expires=1;created=-1`, `sig1=:AAAA`)
	f.Add(`clawguard=("@method" "@target-uri" "x-clawguard-identity");created=1;nonce="n";keyid="gate";tag="clawguard-identity"`, `clawguard=:AAAA:`)
	f.Add(`sig1="@method"`, `sig1=("x")`)
}

// FuzzSignatureInput checks Signature-Input/Signature parsing: no panic;
// every refusal an *Error with a known code; and an accepted signature's
// parameters serialize back to an inner list that parses to the same
// parameters (the "@signature-params" line is stable).
func FuzzSignatureInput(f *testing.F) {
	addSignatureSeeds(f)
	f.Fuzz(func(t *testing.T, input, signature string) {
		for _, label := range []string{"", "sig1"} {
			got, p, _, err := selectSignature(input, signature, label)
			if err != nil {
				e, ok := err.(*Error)
				if !ok || !knownCodes[e.Code] || e.Message == "" {
					t.Fatalf("selectSignature(%q, %q): %#v", input, signature, err)
				}
				continue
			}
			if label != "" && got != label {
				t.Fatalf("asked for label %q, got %q", label, got)
			}
			ser, err := sfv.MarshalInnerList(p.list)
			if err != nil {
				t.Fatalf("accepted parameters do not serialize: %v", err)
			}
			_, p2, _, err := selectSignature("x="+ser, "x=::", "x")
			if err != nil {
				t.Fatalf("serialized parameters %q do not parse: %v", ser, err)
			}
			if strings.Join(p.components, " ") != strings.Join(p2.components, " ") || p.created != p2.created ||
				p.nonce != p2.nonce || p.keyid != p2.keyid || p.alg != p2.alg || p.tag != p2.tag || p.expires != p2.expires {
				t.Fatalf("parameters changed through %q: %+v vs %+v", ser, p, p2)
			}
			for _, c := range p.components {
				if !validComponentName(c) || strings.ContainsAny(c, "\"\\") {
					t.Fatalf("accepted component %q", c)
				}
			}
		}
	})
}

// FuzzVerify sends arbitrary signature, digest and header values through the
// full Verifier: it must never panic, never accept (the fuzzer has no key),
// and refuse with a known code.
func FuzzVerify(f *testing.F) {
	addSignatureSeeds(f)
	v, err := NewVerifier(Config{
		Keys:         map[string][]byte{"client": testKey, "test-shared-secret": testKey},
		MaxBodyBytes: 64,
		Now:          fixedClock(1618884473),
		Nonces:       NewNonceCache(16, time.Unix(0, 0)),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input, signature string) {
		r, err := http.NewRequest("POST", "http://example.com/foo?a=b", strings.NewReader(`{"hello": "world"}`))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Signature-Input", input)
		r.Header.Set("Signature", signature)
		r.Header.Set("Content-Digest", signature)
		r.Header.Set("Date", input)
		_, err = v.Verify(r)
		if err == nil {
			t.Fatalf("accepted a signature without the key: %q %q", input, signature)
		}
		if e, ok := err.(*Error); !ok || !knownCodes[e.Code] || e.HTTPStatus() == 0 {
			t.Fatalf("Verify: %#v", err)
		}
	})
}
