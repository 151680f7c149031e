package httpsig

import (
	"bytes"
	"net/http"
	"slices"
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
			ser := p.serialized
			_, p2, _, err := selectSignature("x="+ser, "x=::", "x")
			if err != nil {
				t.Fatalf("serialized parameters %q do not parse: %v", ser, err)
			}
			if p2.serialized != ser || strings.Join(p.components, " ") != strings.Join(p2.components, " ") || p.created != p2.created ||
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

// FuzzScanSignature holds scanSignature to selectSFV, the parse on sfv's
// trees: on the same fields, with each label, selectSignature (the scanner,
// then sfv for what it leaves) must give selectSFV's answer exactly — the
// same refusal code and message, or the same label, signature bytes and
// parameters — and the scanner must never accept what sfv refuses. So that
// deferring everything cannot pass, the scanner must also decide the
// canonical serialization of every pair sfv accepts, unless the pair is
// outside what it reads (see scanSignature).
func FuzzScanSignature(f *testing.F) {
	addSignatureSeeds(f)
	f.Add(`sig1=("@method" "@target-uri");created=1;nonce="n";keyid="k", sig2=("x";sf "y");a=1.5;b=?0;c=tok/en:x;d=:AA==:`, `sig2=:AAAA:;p, sig1=:AA:`)
	f.Add("sig1=(\"@method\");keyid=\"k\"\t,  sig2;a", `sig1=:AAAA:`)
	f.Add(`sig1=( "@method" );created=007;nonce="a\"b"`, `sig1=:AAAA:`)
	f.Add(`sig1=("@method");created=-0;expires=999999999999999`, `sig1=:`+strings.Repeat("A", 88)+`:`)
	f.Add(`a=1, b=2, c=3, d=4, e=5, f=6, g=7, h=8, sig1=()`, `sig1=::`)
	f.Add(`sig1=();a;b;c;d;e;f;g;h;i`, `sig1=:AAA=:`)
	// Where RFC 8941 (as sfv reads it) refuses, or nearly does.
	for _, in := range []string{
		`sig1=("@method"),`, `sig1=("@method"), sig1=("@path")`, `sig1=("@method");created=1;created=2`,
		`sig1=("@method");created=1234567890123456`, `sig1=("@method");created=123456789012345`,
		`sig1=("@method"	"@path")`, `sig1=("@method" "@path"`, `sig1=("@méthod")`, `sig1=("a\x")`,
		`sig1=("@method")  `, ` sig1=("@method")`, "\tsig1=()", `sig1=();nonce="`, `Sig1=()`, `sig1=()x`,
		`sig1=();created=1.5`, `sig1=();created=-1`, `sig1=();alg=hmac-sha256`, `sig1=();tag`,
	} {
		f.Add(in, `sig1=:AAAA:`)
	}
	for _, sig := range []string{
		`sig1=:A:`, `sig1=:AA=A:`, `sig1=:AAA==:`, `sig1=:AA===:`, `sig1=:A===:`, `sig1=:AA$A:`, `sig1=:AAAA`,
		`sig1=:AAAA:;p`, `sig1=("x")`, `sig1`, `sig1=:AAAA:, `, `sig1=:AAAA:,sig1=:AAAA:`, `sig1=:AAAA: ,sig2=?2`,
		`sig0=:A:, sig1=:AAAA:`, `sig0=:AA=A:, sig1=:AAAA:`, `sig0="\x", sig1=:AAAA:`, `sig0=1.2345, sig1=:AAAA:`,
	} {
		f.Add(`sig1=("@method");created=1;nonce="n";keyid="k"`, sig)
	}
	f.Fuzz(func(t *testing.T, input, signature string) {
		for _, label := range []string{"", "sig1", "sig2"} {
			wantL, wantP, wantSig, wantErr := selectSFV(input, signature, label)
			gotL, gotP, gotSig, gotErr := selectSignature(input, signature, label)
			if wantErr != nil {
				if gotErr == nil || gotErr.Error() != wantErr.Error() {
					t.Fatalf("label %q: sfv refuses %q, %q with %v; selectSignature says %v", label, input, signature, wantErr, gotErr)
				}
				if _, _, _, ok := scanSignature(input, signature, label); ok {
					t.Fatalf("label %q: the scanner accepts %q, %q, which sfv refuses: %v", label, input, signature, wantErr)
				}
				continue
			}
			if gotErr != nil {
				t.Fatalf("label %q: sfv accepts %q, %q; selectSignature refuses: %v", label, input, signature, gotErr)
			}
			sameSelection(t, "selectSignature", gotL, gotP, gotSig, wantL, wantP, wantSig)

			inputs, _ := sfv.ParseDictionary(input)
			sigs, _ := sfv.ParseDictionary(signature)
			if !inScanSubset(inputs, sigs, wantP, wantSig) {
				continue
			}
			cin, _ := sfv.MarshalDictionary(inputs)
			csig, _ := sfv.MarshalDictionary(sigs)
			l, p, sig, ok := scanSignature(cin, csig, label)
			if !ok {
				t.Fatalf("label %q: the scanner leaves canonical fields %q, %q to sfv", label, cin, csig)
			}
			sameSelection(t, "scanSignature (canonical)", l, p, sig, wantL, wantP, wantSig)
		}
	})
}

func sameSelection(t *testing.T, what, label string, p *sigParams, sig []byte, wantLabel string, want *sigParams, wantSig []byte) {
	t.Helper()
	if label != wantLabel || !bytes.Equal(sig, wantSig) || p.serialized != want.serialized ||
		!slices.Equal(p.components, want.components) || p.created != want.created || p.hasCreated != want.hasCreated ||
		p.expires != want.expires || p.hasExpires != want.hasExpires ||
		p.nonce != want.nonce || p.alg != want.alg || p.keyid != want.keyid || p.tag != want.tag {
		t.Fatalf("%s: label %q sig %x %+v; sfv: label %q sig %x %+v", what, label, sig, *p, wantLabel, wantSig, *want)
	}
}

// inScanSubset reports whether scanSignature reads fields like these when
// they are serialized canonically: no decimal anywhere, at most maxScanKeys
// members per dictionary and parameters per item or inner list, string
// parameters without escapes, and a signature of at most maxScanSig bytes.
func inScanSubset(inputs, sigs sfv.Dictionary, p *sigParams, sig []byte) bool {
	if len(sig) > maxScanSig || strings.ContainsAny(p.nonce+p.alg+p.keyid+p.tag, `"\`) {
		return false
	}
	plain := func(v any, ps sfv.Params) bool {
		if _, dec := v.(sfv.Decimal); dec || len(ps) > maxScanKeys {
			return false
		}
		for _, prm := range ps {
			if _, dec := prm.Value.(sfv.Decimal); dec {
				return false
			}
		}
		return true
	}
	for _, d := range []sfv.Dictionary{inputs, sigs} {
		if len(d) > maxScanKeys {
			return false
		}
		for _, e := range d {
			if it := e.Member.Item; it != nil && !plain(it.Value, it.Params) {
				return false
			}
			if il := e.Member.InnerList; il != nil {
				if !plain(nil, il.Params) {
					return false
				}
				for _, it := range il.Items {
					if !plain(it.Value, it.Params) {
						return false
					}
				}
			}
		}
	}
	return true
}
