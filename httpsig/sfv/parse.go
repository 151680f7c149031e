package sfv

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// ParseDictionary parses a Dictionary field value (RFC 8941 §4.2.2). Several
// field lines must be joined with ", " first (RFC 8941 §4.2). An empty value
// is an empty dictionary. A key that appears twice is an error.
func ParseDictionary(s string) (Dictionary, error) {
	p := parser{s: s}
	p.skipSP()
	var d Dictionary
	seen := map[string]bool{}
	for !p.eof() {
		at := p.off
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, &SyntaxError{Offset: at, Msg: fmt.Sprintf("dictionary key %q appears more than once", key), Err: ErrDuplicateKey}
		}
		seen[key] = true
		var m Member
		if p.peek() == '=' {
			p.off++
			if m, err = p.itemOrInnerList(); err != nil {
				return nil, err
			}
		} else {
			params, err := p.params()
			if err != nil {
				return nil, err
			}
			m = Member{Item: &Item{Value: true, Params: params}}
		}
		d = append(d, DictEntry{Key: key, Member: m})
		if err := p.listSeparator(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// ParseList parses a List field value (RFC 8941 §4.2.1).
func ParseList(s string) (List, error) {
	p := parser{s: s}
	p.skipSP()
	var l List
	for !p.eof() {
		m, err := p.itemOrInnerList()
		if err != nil {
			return nil, err
		}
		l = append(l, m)
		if err := p.listSeparator(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// ParseItem parses an Item field value (RFC 8941 §4.2.3).
func ParseItem(s string) (Item, error) {
	p := parser{s: s}
	p.skipSP()
	it, err := p.item()
	if err != nil {
		return Item{}, err
	}
	p.skipSP()
	if !p.eof() {
		return Item{}, p.errf("unexpected %s after the item", p.describe())
	}
	return it, nil
}

// parser walks a field value; off is the next unread byte.
type parser struct {
	s   string
	off int
}

func (p *parser) eof() bool { return p.off >= len(p.s) }

// peek returns the next byte, or 0 at the end (0 is never valid input there).
func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.off]
}

func (p *parser) skipSP() {
	for p.peek() == ' ' {
		p.off++
	}
}

func (p *parser) skipOWS() {
	for c := p.peek(); c == ' ' || c == '\t'; c = p.peek() {
		p.off++
	}
}

func (p *parser) errAt(off int, format string, args ...any) error {
	return &SyntaxError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errf(format string, args ...any) error {
	return p.errAt(p.off, format, args...)
}

// describe names the next byte for an error message.
func (p *parser) describe() string {
	if p.eof() {
		return "end of field"
	}
	c := p.s[p.off]
	if c >= 0x21 && c <= 0x7e {
		return fmt.Sprintf("%q", string(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// listSeparator consumes the OWS "," OWS between list or dictionary members,
// or nothing at the end; a trailing comma is an error.
func (p *parser) listSeparator() error {
	p.skipOWS()
	if p.eof() {
		return nil
	}
	if p.peek() != ',' {
		return p.errf("expected \",\" or end of field, found %s", p.describe())
	}
	p.off++
	p.skipOWS()
	if p.eof() {
		return p.errf("trailing comma")
	}
	return nil
}

func (p *parser) itemOrInnerList() (Member, error) {
	if p.peek() == '(' {
		il, err := p.innerList()
		if err != nil {
			return Member{}, err
		}
		return Member{InnerList: &il}, nil
	}
	it, err := p.item()
	if err != nil {
		return Member{}, err
	}
	return Member{Item: &it}, nil
}

func (p *parser) innerList() (InnerList, error) {
	p.off++ // "("
	var il InnerList
	for {
		p.skipSP()
		if p.eof() {
			return InnerList{}, p.errf("inner list is not closed with \")\"")
		}
		if p.peek() == ')' {
			p.off++
			params, err := p.params()
			if err != nil {
				return InnerList{}, err
			}
			il.Params = params
			return il, nil
		}
		it, err := p.item()
		if err != nil {
			return InnerList{}, err
		}
		il.Items = append(il.Items, it)
		if p.eof() {
			return InnerList{}, p.errf("inner list is not closed with \")\"")
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return InnerList{}, p.errf("expected a space or \")\" after an inner list item, found %s", p.describe())
		}
	}
}

func (p *parser) item() (Item, error) {
	v, err := p.bareItem()
	if err != nil {
		return Item{}, err
	}
	params, err := p.params()
	if err != nil {
		return Item{}, err
	}
	return Item{Value: v, Params: params}, nil
}

func (p *parser) params() (Params, error) {
	var ps Params
	for p.peek() == ';' {
		p.off++
		p.skipSP()
		at := p.off
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		if _, dup := ps.Get(key); dup {
			return nil, p.errAt(at, "parameter %q appears more than once", key)
		}
		var v any = true
		if p.peek() == '=' {
			p.off++
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		ps = append(ps, Param{Key: key, Value: v})
	}
	return ps, nil
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

// key parses a dictionary or parameter key: lcalpha or "*", then lcalpha,
// DIGIT, "_", "-", "." or "*".
func (p *parser) key() (string, error) {
	start := p.off
	if c := p.peek(); !isLCAlpha(c) && c != '*' {
		return "", p.errf("expected a key (lowercase letter or \"*\"), found %s", p.describe())
	}
	p.off++
	for c := p.peek(); isLCAlpha(c) || isDigit(c) || strings.IndexByte("_-.*", c) >= 0; c = p.peek() {
		p.off++
	}
	return p.s[start:p.off], nil
}

func (p *parser) bareItem() (any, error) {
	switch c := p.peek(); {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || isAlpha(c):
		return p.token(), nil
	case c == ':':
		return p.byteSeq()
	case c == '?':
		return p.boolean()
	default:
		return nil, p.errf("expected an item (number, \"string\", token, :bytes: or ?boolean), found %s", p.describe())
	}
}

func (p *parser) number() (any, error) {
	start := p.off
	neg := p.peek() == '-'
	if neg {
		p.off++
	}
	if !isDigit(p.peek()) {
		return nil, p.errf("expected a digit, found %s", p.describe())
	}
	digitsStart, dot := p.off, -1
	for {
		c := p.peek()
		if isDigit(c) {
			p.off++
		} else if c == '.' && dot < 0 {
			if p.off-digitsStart > 12 {
				return nil, p.errAt(start, "decimal has more than 12 integer digits")
			}
			dot = p.off
			p.off++
		} else {
			break
		}
		if dot < 0 && p.off-digitsStart > 15 {
			return nil, p.errAt(start, "integer has more than 15 digits")
		}
		if dot >= 0 && p.off-digitsStart > 16 {
			return nil, p.errAt(start, "decimal is longer than 16 characters")
		}
	}
	if dot < 0 {
		n, _ := strconv.ParseInt(p.s[digitsStart:p.off], 10, 64) // ≤ 15 digits: cannot overflow
		if neg {
			n = -n
		}
		return n, nil
	}
	frac := p.off - dot - 1
	if frac == 0 {
		return nil, p.errAt(dot, "decimal ends with \".\"")
	}
	if frac > 3 {
		return nil, p.errAt(dot, "decimal has more than 3 fractional digits")
	}
	ip, _ := strconv.ParseInt(p.s[digitsStart:dot], 10, 64)
	fp, _ := strconv.ParseInt(p.s[dot+1:p.off], 10, 64)
	for ; frac < 3; frac++ {
		fp *= 10
	}
	v := ip*1000 + fp
	if neg {
		v = -v
	}
	return Decimal{Thousandths: v}, nil
}

func (p *parser) str() (string, error) {
	start := p.off
	p.off++ // opening quote
	// Most strings have no escape: return them as a slice of the input.
	for i := p.off; i < len(p.s); i++ {
		c := p.s[i]
		if c == '"' {
			p.off = i + 1
			return p.s[start+1 : i], nil
		}
		if c == '\\' || c < 0x20 || c > 0x7e {
			break // the loop below reports or unescapes it
		}
	}
	var b strings.Builder
	for {
		if p.eof() {
			return "", p.errAt(start, "string is not closed with '\"'")
		}
		c := p.s[p.off]
		switch {
		case c == '"':
			p.off++
			return b.String(), nil
		case c == '\\':
			p.off++
			if n := p.peek(); n != '"' && n != '\\' {
				return "", p.errf("invalid escape in string: only \\\" and \\\\ are allowed, found %s", p.describe())
			}
			b.WriteByte(p.s[p.off])
		case c < 0x20 || c > 0x7e:
			return "", p.errf("strings allow only printable ASCII, found byte 0x%02x", c)
		default:
			b.WriteByte(c)
		}
		p.off++
	}
}

// isTChar reports an RFC 9110 tchar.
func isTChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *parser) token() Token {
	start := p.off
	p.off++
	for c := p.peek(); isTChar(c) || c == ':' || c == '/'; c = p.peek() {
		p.off++
	}
	return Token(p.s[start:p.off])
}

func (p *parser) byteSeq() ([]byte, error) {
	start := p.off
	p.off++ // opening colon
	end := strings.IndexByte(p.s[p.off:], ':')
	if end < 0 {
		return nil, p.errAt(start, "byte sequence is not closed with \":\"")
	}
	enc := p.s[p.off : p.off+end]
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '/' && c != '=' {
			return nil, p.errAt(p.off+i, "byte sequences allow only base64 characters, found %q", string(c))
		}
	}
	// RFC 8941 §4.2.7: parsers should not fail on missing "=" padding or on
	// non-zero pad bits; "=" anywhere but at the end is still an error.
	trimmed := strings.TrimRight(enc, "=")
	if i := strings.IndexByte(trimmed, '='); i >= 0 {
		return nil, p.errAt(p.off+i, "\"=\" padding inside a byte sequence")
	}
	if len(trimmed) != len(enc) && (len(enc)%4 != 0 || len(enc)-len(trimmed) > 2) {
		return nil, p.errAt(p.off+len(trimmed), "wrong \"=\" padding in byte sequence")
	}
	b, err := base64.RawStdEncoding.DecodeString(trimmed)
	if err != nil {
		return nil, p.errAt(p.off, "byte sequence is not valid base64 (%d characters)", len(enc))
	}
	p.off += end + 1
	return b, nil
}

func (p *parser) boolean() (bool, error) {
	p.off++ // "?"
	switch p.peek() {
	case '1':
		p.off++
		return true, nil
	case '0':
		p.off++
		return false, nil
	default:
		return false, p.errf("boolean must be ?1 or ?0, found %s", p.describe())
	}
}
