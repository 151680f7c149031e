package httpsig

import (
	"encoding/base64"
	"strings"
)

// Bounds of what scanSignature reads; past them it leaves the fields to
// selectSFV.
const (
	maxScanKeys = 8  // members of a dictionary, parameters of an item or inner list
	maxScanSig  = 64 // signature bytes: ed25519's 64, hmac-sha256's 32
)

// scanned is what scanSignature returns, in one allocation.
type scanned struct {
	p     sigParams
	comps [8]string // p.components' storage for the usual few
	sig   [maxScanSig]byte
}

// scanSignature is selectSignature without a parse tree, for the fields
// clients send: the Signature-Input member is read straight into sigParams
// (its text, when serialized canonically, is the "@signature-params" value
// as it is) and the signature decoded into place, in one allocation. Every
// other member is checked and skipped: a field that is not valid RFC 8941
// is never half read.
//
// It follows RFC 8941 as package sfv does (duplicate keys are an error) on
// the subset it reads: dictionaries of up to maxScanKeys members, bare items
// other than decimals, up to maxScanKeys parameters per item or inner list;
// the chosen Signature-Input member serialized canonically, without
// escapes; a signature of up to maxScanSig bytes. Anything else, and every
// error, is ok false: selectSFV then decides, and says what is wrong and
// where. FuzzScanSignature checks that both give the same answer.
func scanSignature(input, signature, label string) (string, *sigParams, []byte, bool) {
	s := new(scanned)
	s.p.components = s.comps[:0]
	in := scanner{s: input}
	chosen, ok := in.dictionary(label, label == "", func() bool { return in.inputMember(&s.p) })
	if !ok {
		return "", nil, nil, false
	}
	var sig []byte
	sg := scanner{s: signature}
	if _, ok := sg.dictionary(chosen, label == "", func() bool {
		var decoded bool
		sig, decoded = sg.signatureMember(&s.sig)
		return decoded
	}); !ok {
		return "", nil, nil, false
	}
	return chosen, &s.p, sig, true
}

// scanner reads one field value; off is the next unread byte, and peek is 0
// at the end (never valid there).
type scanner struct {
	s   string
	off int
}

func (sc *scanner) eof() bool { return sc.off >= len(sc.s) }

func (sc *scanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.s[sc.off]
}

func (sc *scanner) skipSP() {
	for sc.peek() == ' ' {
		sc.off++
	}
}

func (sc *scanner) skipOWS() {
	for c := sc.peek(); c == ' ' || c == '\t'; c = sc.peek() {
		sc.off++
	}
}

// dictionary reads a whole dictionary, calling chosen to read the member
// labelled label (the first one when label is "") after its key, and
// skipping the others; single refuses a second member. It returns the
// chosen label. (chosen reads from sc itself: handing it sc would move the
// scanner to the heap.)
func (sc *scanner) dictionary(label string, single bool, chosen func() bool) (string, bool) {
	var keys keySet
	found := ""
	sc.skipSP()
	if sc.eof() {
		return "", false
	}
	for {
		k, ok := sc.key()
		if !ok || !keys.add(k) || single && keys.n > 1 {
			return "", false
		}
		if k == label || label == "" {
			if !chosen() {
				return "", false
			}
			found = k
		} else if !sc.skipMember() {
			return "", false
		}
		// OWS "," OWS between members; no trailing comma.
		sc.skipOWS()
		if sc.eof() {
			return found, found != ""
		}
		if sc.s[sc.off] != ',' {
			return "", false
		}
		sc.off++
		sc.skipOWS()
		if sc.eof() {
			return "", false
		}
	}
}

// inputMember reads the chosen Signature-Input member: "=", an inner list of
// component names, its parameters, all as serialization writes them.
func (sc *scanner) inputMember(p *sigParams) bool {
	if sc.peek() != '=' {
		return false
	}
	sc.off++
	start := sc.off
	if sc.peek() != '(' {
		return false
	}
	sc.off++
	for sc.peek() != ')' {
		if len(p.components) > 0 { // one space between items, none inside the parentheses
			if sc.peek() != ' ' {
				return false
			}
			sc.off++
		}
		name, escaped, ok := sc.str()
		if !ok || escaped || len(p.components) == maxComponents || p.addComponent(name) != nil {
			return false
		}
	}
	sc.off++
	var keys keySet
	for sc.peek() == ';' {
		sc.off++
		k, ok := sc.key()
		if !ok || !keys.add(k) || sc.peek() != '=' {
			return false
		}
		sc.off++
		var err error
		if sc.peek() == '"' {
			s, escaped, ok := sc.str()
			if !ok || escaped {
				return false
			}
			err = p.setString(k, s)
		} else {
			n, canonical, ok := sc.integer()
			if !ok || !canonical {
				return false
			}
			err = p.setInt(k, n)
		}
		if err != nil {
			return false
		}
	}
	p.serialized = sc.s[start:sc.off]
	return true
}

// signatureMember reads the chosen Signature member, "=" and a byte
// sequence without parameters, decoding it into dst.
func (sc *scanner) signatureMember(dst *[maxScanSig]byte) ([]byte, bool) {
	if sc.peek() != '=' {
		return nil, false
	}
	sc.off++
	enc, ok := sc.byteSeq()
	if !ok || sc.peek() == ';' || base64.RawStdEncoding.DecodedLen(len(enc)) > len(dst) {
		return nil, false
	}
	var src [(maxScanSig + 2) / 3 * 4]byte // a copy: Decode wants bytes, and []byte(enc) would allocate
	n, err := base64.RawStdEncoding.Decode(dst[:], src[:copy(src[:], enc)])
	return dst[:n], err == nil
}

// skipMember checks a member that is not read: "=" and an item or inner
// list, or parameters alone (the value true).
func (sc *scanner) skipMember() bool {
	if sc.peek() != '=' {
		return sc.skipParams()
	}
	sc.off++
	if sc.peek() != '(' {
		return sc.skipBareItem() && sc.skipParams()
	}
	sc.off++
	for {
		sc.skipSP()
		if sc.peek() == ')' {
			sc.off++
			return sc.skipParams()
		}
		if !sc.skipBareItem() || !sc.skipParams() {
			return false
		}
		if c := sc.peek(); c != ' ' && c != ')' {
			return false
		}
	}
}

func (sc *scanner) skipParams() bool {
	var keys keySet
	for sc.peek() == ';' {
		sc.off++
		sc.skipSP()
		k, ok := sc.key()
		if !ok || !keys.add(k) {
			return false
		}
		if sc.peek() == '=' {
			sc.off++
			if !sc.skipBareItem() {
				return false
			}
		}
	}
	return true
}

func (sc *scanner) skipBareItem() bool {
	ok := false
	switch c := sc.peek(); {
	case c == '-' || isDigit(c):
		_, _, ok = sc.integer()
	case c == '"':
		_, _, ok = sc.str()
	case c == ':':
		_, ok = sc.byteSeq()
	case c == '?':
		sc.off++
		if b := sc.peek(); b == '0' || b == '1' {
			sc.off++
			ok = true
		}
	case c == '*' || isAlpha(c): // a token
		for sc.off++; isTChar(sc.peek()) || sc.peek() == ':' || sc.peek() == '/'; sc.off++ {
		}
		ok = true
	}
	return ok
}

// key reads a dictionary or parameter key: lcalpha or "*", then lcalpha,
// DIGIT, "_", "-", "." or "*".
func (sc *scanner) key() (string, bool) {
	start := sc.off
	if c := sc.peek(); !isLCAlpha(c) && c != '*' {
		return "", false
	}
	for sc.off++; isLCAlpha(sc.peek()) || isDigit(sc.peek()) || strings.IndexByte("_-.*", sc.peek()) >= 0; sc.off++ {
	}
	return sc.s[start:sc.off], true
}

// integer reads an integer of at most 15 digits (a decimal is not read);
// canonical reports that serialization would write it the same (no sign, no
// leading zero).
func (sc *scanner) integer() (n int64, canonical, ok bool) {
	neg := sc.peek() == '-'
	if neg {
		sc.off++
	}
	start := sc.off
	for ; isDigit(sc.peek()) && sc.off-start < 16; sc.off++ {
		n = n*10 + int64(sc.s[sc.off]-'0')
	}
	digits := sc.off - start
	if digits == 0 || digits > 15 || sc.peek() == '.' {
		return 0, false, false
	}
	if neg {
		n = -n
	}
	return n, !neg && (digits == 1 || sc.s[start] != '0'), true
}

// str reads a string: printable ASCII, with \" and \\ the only escapes. s is
// the text between the quotes, escapes as written.
func (sc *scanner) str() (s string, escaped, ok bool) {
	if sc.peek() != '"' {
		return "", false, false
	}
	start := sc.off + 1
	for i := start; i < len(sc.s); i++ {
		switch c := sc.s[i]; {
		case c == '"':
			sc.off = i + 1
			return sc.s[start:i], escaped, true
		case c == '\\':
			if i++; i == len(sc.s) || sc.s[i] != '"' && sc.s[i] != '\\' {
				return "", false, false
			}
			escaped = true
		case c < 0x20 || c > 0x7e:
			return "", false, false
		}
	}
	return "", false, false
}

// byteSeq reads a byte sequence and returns its base64 without padding:
// base64 characters only, "=" only as the one or two last of a padded
// length, and a length base64 can decode.
func (sc *scanner) byteSeq() (string, bool) {
	if sc.peek() != ':' {
		return "", false
	}
	rest := sc.s[sc.off+1:]
	end := strings.IndexByte(rest, ':')
	if end < 0 {
		return "", false
	}
	enc := rest[:end]
	for i := 0; i < len(enc); i++ {
		if c := enc[i]; !isAlpha(c) && !isDigit(c) && c != '+' && c != '/' && c != '=' {
			return "", false
		}
	}
	trimmed := strings.TrimRight(enc, "=")
	if pad := len(enc) - len(trimmed); strings.IndexByte(trimmed, '=') >= 0 ||
		pad > 0 && (len(enc)%4 != 0 || pad > 2) || len(trimmed)%4 == 1 {
		return "", false
	}
	sc.off += end + 2
	return trimmed, true
}

// keySet holds the keys of one dictionary or parameter list read so far:
// RFC 8941 lets a repeated key override, sfv (and so this) refuses it.
type keySet struct {
	keys [maxScanKeys]string
	n    int
}

// add records k; false if it was seen already or the set is full.
func (ks *keySet) add(k string) bool {
	if ks.n == len(ks.keys) {
		return false
	}
	for _, prev := range ks.keys[:ks.n] {
		if prev == k {
			return false
		}
	}
	ks.keys[ks.n] = k
	ks.n++
	return true
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
