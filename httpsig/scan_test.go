package httpsig

import (
	"crypto/ed25519"
	"net/http"
	"strings"
	"testing"
)

// TestScanSignatureReadsClientFields: the fields Sign and SignEd25519 write,
// the RFC 9421 example, several signatures on several lines and spaces
// around commas are read by the scanner itself, with sfv's result.
func TestScanSignatureReadsClientFields(t *testing.T) {
	type fields struct{ name, input, signature, label string }
	var cases []fields
	signed := func(name, label string, sign func(*http.Request) error) {
		req, _ := http.NewRequest("POST", "https://gateway.example/hooks?x=1", strings.NewReader("body"))
		req.Header.Set("X-Request-Id", "42")
		if err := sign(req); err != nil {
			t.Fatal(err)
		}
		in, _ := fieldValue(req.Header, "Signature-Input")
		sig, _ := fieldValue(req.Header, "Signature")
		cases = append(cases, fields{name, in, sig, label})
	}
	signed("Sign", "", func(r *http.Request) error {
		return Sign(r, "client", testKey, WithTag("deploy"), WithHeaders("X-Request-Id"))
	})
	signed("SignEd25519", "", func(r *http.Request) error {
		return SignEd25519(r, "device", ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	})
	signed("two signatures on two lines", "gate", func(r *http.Request) error {
		if err := Sign(r, "proxy", otherKey, WithLabel("proxy")); err != nil {
			return err
		}
		return Sign(r, "client", testKey, WithLabel("gate"))
	})
	cases = append(cases,
		fields{"RFC 9421 B.2.5",
			`sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
			`sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`, ""},
		fields{"other members of every kind, spaces around commas",
			"other=(\"@query-param\";name=\"q\" tok ?1 -5 :AA==:);v=\"a\\\"b\" ,\tsig1=(\"@method\");created=0;nonce=\"n\";keyid=\"k\"",
			`other=:AAAA:;x, sig1=:AAAA:`, "sig1"})
	for _, tc := range cases {
		wantL, wantP, wantSig, err := selectSFV(tc.input, tc.signature, tc.label)
		if err != nil {
			t.Fatalf("%s: sfv refuses %q, %q: %v", tc.name, tc.input, tc.signature, err)
		}
		l, p, sig, ok := scanSignature(tc.input, tc.signature, tc.label)
		if !ok {
			t.Errorf("%s: the scanner leaves %q, %q to sfv", tc.name, tc.input, tc.signature)
			continue
		}
		sameSelection(t, tc.name, l, p, sig, wantL, wantP, wantSig)
	}
}
