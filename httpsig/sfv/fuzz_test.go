package sfv

import (
	"errors"
	"strings"
	"testing"

	"github.com/dunglas/httpsfv"
)

var fuzzSeeds = []string{
	``,
	`sig1=("@method" "@target-uri" "content-digest");created=1618884473;keyid="test-key";nonce="abc";alg="hmac-sha256"`,
	`sig1=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`,
	`sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:`,
	`a=1, b=?0, c=tok/x:y, d=-1.25, e="s\"q\\", f=(1 2);p, g;h=?1`,
	`a=1, a=2`,
	`a=(  "x"  ), b=:YQ:`,
	`a=1.1234, b=1234567890123456`,
	"a=\"\x7f\"",
	`x=@1659578233, y=%"d"`,
}

// FuzzParse checks, for any input, that the parsers never panic; that what
// they accept serializes and parses back to the same value; and, against
// github.com/dunglas/httpsfv as an independent implementation, that both agree
// on what is valid except where this package is deliberately stricter
// (duplicate keys, RFC 9651 dates and display strings) or follows RFC 8941
// §4.2.7 where httpsfv does not (unpadded base64).
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDictionary(s)
		checkSyntaxError(t, s, err)
		if err == nil {
			out, err := MarshalDictionary(d)
			if err != nil {
				t.Fatalf("MarshalDictionary of parsed %q: %v", s, err)
			}
			d2, err := ParseDictionary(out)
			if err != nil {
				t.Fatalf("serialization %q of %q does not parse: %v", out, s, err)
			}
			if out2, _ := MarshalDictionary(d2); out2 != out {
				t.Fatalf("round trip of %q: %q then %q", s, out, out2)
			}
		}
		compareWithHTTPSFV(t, s, out(MarshalDictionary(d)), err)

		l, err := ParseList(s)
		checkSyntaxError(t, s, err)
		if err == nil {
			out, err := MarshalList(l)
			if err != nil {
				t.Fatalf("MarshalList of parsed %q: %v", s, err)
			}
			if _, err := ParseList(out); err != nil {
				t.Fatalf("serialization %q of %q does not parse: %v", out, s, err)
			}
		}
		it, err := ParseItem(s)
		checkSyntaxError(t, s, err)
		if err == nil {
			if _, err := MarshalItem(it); err != nil {
				t.Fatalf("MarshalItem of parsed %q: %v", s, err)
			}
		}
	})
}

func out(s string, _ error) string { return s }

func checkSyntaxError(t *testing.T, s string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("parse %q: %v is not a *SyntaxError", s, err)
	}
	if se.Offset < 0 || se.Offset > len(s) {
		t.Fatalf("parse %q: offset %d outside the input", s, se.Offset)
	}
}

// compareWithHTTPSFV cross-checks ParseDictionary's verdict on s (ours is the
// canonical serialization when mine == nil) with httpsfv's.
func compareWithHTTPSFV(t *testing.T, s, ours string, mine error) {
	t.Helper()
	theirs, terr := httpsfv.UnmarshalDictionary([]string{s})
	switch {
	case mine == nil && terr != nil:
		if strings.Contains(terr.Error(), "base64") {
			return // RFC 8941 §4.2.7: missing padding and non-zero pad bits should not fail
		}
		if strings.Contains(terr.Error(), "out of range") {
			return // httpsfv refuses a 15-digit integer followed by more input; RFC 8941 allows it
		}
		t.Fatalf("we accept %q, httpsfv refuses it: %v", s, terr)
	case mine != nil && terr == nil:
		if strings.Contains(mine.Error(), "more than once") || strings.ContainsAny(s, "@%") {
			return // deliberately stricter: duplicate keys, RFC 9651 types
		}
		t.Fatalf("httpsfv accepts %q, we refuse it: %v", s, mine)
	case mine == nil:
		ts, err := httpsfv.Marshal(theirs)
		if err != nil {
			return // httpsfv cannot serialize some values it parses; nothing to compare
		}
		// Compare through our parser so that equivalent spellings (e.g. "-0.0")
		// do not count as disagreement.
		d, err := ParseDictionary(ts)
		if err != nil {
			t.Fatalf("httpsfv serialized %q as %q, which we refuse: %v", s, ts, err)
		}
		if got, _ := MarshalDictionary(d); got != ours {
			t.Fatalf("%q: we serialize %q, httpsfv %q", s, ours, ts)
		}
	}
}
