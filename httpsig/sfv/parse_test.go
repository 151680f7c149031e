package sfv

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseDictionaryValid(t *testing.T) {
	for _, tc := range []struct {
		in, canonical string
	}{
		{``, ``},
		{`   `, ``},
		{`a=1`, `a=1`},
		{`a=1, b=2`, `a=1, b=2`},
		{"a=1 ,\t b=2", `a=1, b=2`},
		{`a=1,b=2`, `a=1, b=2`},
		{`a, b=?1, c=?0`, `a, b, c=?0`},
		{`a;x=1, b=?1;y`, `a;x=1, b;y`},
		{`sig1=("@method" "@target-uri");created=1618884473;keyid="k"`, `sig1=("@method" "@target-uri");created=1618884473;keyid="k"`},
		{`sig1=(  "a"   "b" )`, `sig1=("a" "b")`},
		{`sig1=()`, `sig1=()`},
		{`x=:cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:`, `x=:cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:`},
		{`x=:cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg:`, `x=:cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:`}, // missing padding is accepted
		{`x=::`, `x=::`},
		{`x="a \"quoted\" \\ string"`, `x="a \"quoted\" \\ string"`},
		{`x=foo123/456:bar*`, `x=foo123/456:bar*`},
		{`x=*tok`, `x=*tok`},
		{`x=-0012`, `x=-12`},
		{`x=999999999999999`, `x=999999999999999`},
		{`x=-999999999999999`, `x=-999999999999999`},
		{`x=000000000000000, y=1`, `x=0, y=1`}, // 15 digits then more input (httpsfv v1.1.1 refuses this)
		{`x=123456789012.123, y=1`, `x=123456789012.123, y=1`},
		{`x=1.5, y=-0.250, z=123456789012.123`, `x=1.5, y=-0.25, z=123456789012.123`},
		{`x=1.0`, `x=1.0`},
		{`*=1, a*b.c_d-e=2`, `*=1, a*b.c_d-e=2`},
		{`x=(1 2);p=?0, y=3`, `x=(1 2);p=?0, y=3`},
		{`x=("a";q=1 b);r`, `x=("a";q=1 b);r`},
		{`x=1;  a=2`, `x=1;a=2`}, // SP is allowed before a parameter key
	} {
		d, err := ParseDictionary(tc.in)
		if err != nil {
			t.Errorf("ParseDictionary(%q): %v", tc.in, err)
			continue
		}
		got, err := MarshalDictionary(d)
		if err != nil {
			t.Errorf("MarshalDictionary(%q): %v", tc.in, err)
			continue
		}
		if got != tc.canonical {
			t.Errorf("ParseDictionary(%q) serializes as %q, want %q", tc.in, got, tc.canonical)
		}
	}
}

func TestParseDictionaryValues(t *testing.T) {
	d, err := ParseDictionary(`a=1, b="s", c=tok, d=:AQID:, e=?0, f=2.5, g, h=(1 "x");p=tok`)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{int64(1), "s", Token("tok"), []byte{1, 2, 3}, false, Decimal{2500}, true}
	for i, w := range want {
		if got := d[i].Member.Item.Value; !reflect.DeepEqual(got, w) {
			t.Errorf("member %s = %#v, want %#v", d[i].Key, got, w)
		}
	}
	il := d[7].Member.InnerList
	if il == nil || len(il.Items) != 2 || il.Items[1].Value != "x" {
		t.Fatalf("inner list = %#v", il)
	}
	if v, ok := il.Params.Get("p"); !ok || v != Token("tok") {
		t.Errorf("inner list param p = %v, %v", v, ok)
	}
	if m, ok := d.Get("b"); !ok || m.Item.Value != "s" {
		t.Errorf("Get(b) = %v, %v", m, ok)
	}
}

// TestParseDictionaryInvalid tries inputs a lenient parser lets through; each
// must fail with the byte offset of the problem.
func TestParseDictionaryInvalid(t *testing.T) {
	for _, tc := range []struct {
		in     string
		offset int
		msg    string
	}{
		{`a=1, a=2`, 5, `key "a" appears more than once`},
		{`sig1=("a"), sig1=("b")`, 12, `key "sig1" appears more than once`},
		{`a=1;x;x`, 6, `parameter "x" appears more than once`},
		{`a=1,`, 4, `trailing comma`},
		{`a=1, `, 5, `trailing comma`},
		{`a=1 b=2`, 4, `expected ","`},
		{`A=1`, 0, `expected a key`},
		{`1a=1`, 0, `expected a key`},
		{`a=`, 2, `expected an item`},
		{`a=1;`, 4, `expected a key`},
		{`a=(1 2`, 6, `not closed`},
		{`a=(1  2`, 7, `not closed`},
		{`a=(1,2)`, 4, `expected a space or ")"`},
		{`a="abc`, 2, `not closed`},
		{`a="a\x"`, 5, `invalid escape`},
		{"a=\"a\tb\"", 4, `printable ASCII`},
		{"a=\"caf\xc3\xa9\"", 6, `printable ASCII`},
		{`a=:abc`, 2, `not closed`},
		{`a=:ab$c:`, 5, `base64 characters`},
		{`a=:a=bc:`, 4, `padding inside`},
		{`a=:YQ===:`, 5, `wrong "=" padding`},
		{`a=:YWJjZA=:`, 9, `wrong "=" padding`},
		{`a=:Y:`, 3, `not valid base64`},
		{`a=?2`, 3, `boolean must be ?1 or ?0`},
		{`a=?`, 3, `boolean must be ?1 or ?0`},
		{`a=-`, 3, `expected a digit`},
		{`a=-x`, 3, `expected a digit`},
		{`a=1234567890123456`, 2, `more than 15 digits`},
		{`a=1234567890123.1`, 2, `more than 12 integer digits`},
		{`a=1.`, 3, `ends with "."`},
		{`a=1.1234`, 3, `more than 3 fractional digits`},
		{`a=1.2.3`, 5, `expected ","`},
		{`a=@1659578233`, 2, `expected an item`}, // RFC 9651 date: not RFC 8941
		{`a=%"display"`, 2, `expected an item`},  // RFC 9651 display string
		{"a=1\x00", 3, `expected "," or end of field, found byte 0x00`},
		{"\ta=1", 0, `expected a key`}, // only SP may lead a field
	} {
		_, err := ParseDictionary(tc.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseDictionary(%q) = %v, want a SyntaxError", tc.in, err)
			continue
		}
		if se.Offset != tc.offset || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("ParseDictionary(%q) = %v, want offset %d and %q", tc.in, err, tc.offset, tc.msg)
		}
		if !strings.HasPrefix(err.Error(), "at byte ") {
			t.Errorf("error %q does not lead with the offset", err)
		}
	}
}

func TestParseListAndItem(t *testing.T) {
	l, err := ParseList(`sha-256, (a b);q=1, "x";y=?0`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := MarshalList(l)
	if err != nil || got != `sha-256, (a b);q=1, "x";y=?0` {
		t.Errorf("list round trip = %q, %v", got, err)
	}
	if _, err := ParseList(`a, , b`); err == nil {
		t.Error("ParseList accepted an empty member")
	}
	it, err := ParseItem(`  "hello";a=1 `)
	if err != nil || it.Value != "hello" {
		t.Fatalf("ParseItem = %#v, %v", it, err)
	}
	for _, bad := range []string{``, `"a" "b"`, `1,2`, `(1 2)`} {
		if _, err := ParseItem(bad); err == nil {
			t.Errorf("ParseItem(%q) succeeded", bad)
		}
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	for _, it := range []Item{
		{Value: int64(1_000_000_000_000_000)},
		{Value: "line\nbreak"},
		{Value: Token("1abc")},
		{Value: Token("")},
		{Value: 1.5},
		{Value: int64(1), Params: Params{{Key: "Bad", Value: true}}},
	} {
		if s, err := MarshalItem(it); err == nil {
			t.Errorf("MarshalItem(%#v) = %q, want an error", it, s)
		}
	}
	if _, err := MarshalDictionary(Dictionary{{Key: "", Member: Member{Item: &Item{Value: int64(1)}}}}); err == nil {
		t.Error("MarshalDictionary accepted an empty key")
	}
	if _, err := MarshalDictionary(Dictionary{{Key: "a"}}); err == nil {
		t.Error("MarshalDictionary accepted an empty member")
	}
}

func TestDecimalString(t *testing.T) {
	for in, want := range map[int64]string{0: "0.0", 1: "0.001", -1: "-0.001", 1500: "1.5", -250: "-0.25", 123456789012123: "123456789012.123"} {
		if got := (Decimal{in}).String(); got != want {
			t.Errorf("Decimal{%d} = %q, want %q", in, got, want)
		}
	}
}

func TestDuplicateKeyIsDistinguishable(t *testing.T) {
	if _, err := ParseDictionary(`a=1, a=2`); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("duplicate dictionary key: %v does not wrap ErrDuplicateKey", err)
	}
	if _, err := ParseDictionary(`a=1;x;x`); err == nil || errors.Is(err, ErrDuplicateKey) {
		t.Errorf("duplicate parameter: %v", err)
	}
	if _, err := ParseDictionary(`a=1 b`); errors.Is(err, ErrDuplicateKey) {
		t.Errorf("syntax error wraps ErrDuplicateKey: %v", err)
	}
}
