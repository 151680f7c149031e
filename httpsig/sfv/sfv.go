package sfv

import (
	"errors"
	"fmt"
	"strconv"
)

// Token is a bare item of type Token (RFC 8941 §3.3.4), kept distinct from a
// String so that serialization round-trips.
type Token string

// Decimal is a bare item of type Decimal (RFC 8941 §3.3.2), held exactly as a
// count of thousandths: decimals carry at most three fractional digits.
type Decimal struct {
	Thousandths int64
}

// String formats d the way RFC 8941 §4.1.5 serializes it.
func (d Decimal) String() string {
	v := d.Thousandths
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	frac := strconv.FormatInt(v%1000+1000, 10)[1:] // three digits, zero padded
	for len(frac) > 1 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	return sign + strconv.FormatInt(v/1000, 10) + "." + frac
}

// Param is one parameter: a key and a bare item value (int64, Decimal,
// string, Token, []byte or bool).
type Param struct {
	Key   string
	Value any
}

// Params are an item's or inner list's parameters, in the order received.
type Params []Param

// Get returns the value of the parameter key, if present.
func (ps Params) Get(key string) (any, bool) {
	for _, p := range ps {
		if p.Key == key {
			return p.Value, true
		}
	}
	return nil, false
}

// Item is a bare item with parameters. Value is one of int64, Decimal,
// string, Token, []byte or bool.
type Item struct {
	Value  any
	Params Params
}

// InnerList is a parenthesized list of items with parameters of its own.
type InnerList struct {
	Items  []Item
	Params Params
}

// Member is a dictionary value or list member: exactly one of Item and
// InnerList is set.
type Member struct {
	Item      *Item
	InnerList *InnerList
}

// DictEntry is one key and its member, in the order received.
type DictEntry struct {
	Key    string
	Member Member
}

// Dictionary is an ordered map of keys to members with unique keys.
type Dictionary []DictEntry

// Get returns the member for key, if present.
func (d Dictionary) Get(key string) (Member, bool) {
	for _, e := range d {
		if e.Key == key {
			return e.Member, true
		}
	}
	return Member{}, false
}

// List is an ordered list of members.
type List []Member

// ErrDuplicateKey is wrapped by the SyntaxError for a dictionary key that
// appears twice, so callers can tell ambiguity from malformation.
var ErrDuplicateKey = errors.New("duplicate dictionary key")

// SyntaxError reports where a field value stops being a valid structured
// field and why.
type SyntaxError struct {
	Offset int    // byte offset in the field value
	Msg    string // what was expected or what is wrong
	Err    error  // ErrDuplicateKey or nil
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("at byte %d: %s", e.Offset, e.Msg)
}

func (e *SyntaxError) Unwrap() error { return e.Err }
