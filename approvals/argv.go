package approvals

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// JoinArgs renders arguments as the single string args patterns are
// matched against: the arguments joined by single spaces, where an argument
// that is empty or contains a space or a single quote is written in single
// quotes, an inner quote escaped as POSIX shells do (close, backslash-quote,
// reopen). So every unquoted space in the result is
// an argument boundary: ["a b"] gives 'a b' and never reads as ["a", "b"].
func JoinArgs(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && !strings.ContainsAny(a, " '") {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}

// ExactArgs returns the args pattern that matches exactly these arguments:
// what allow-always records unless a person widens it.
func ExactArgs(args []string) string {
	return "^" + quoteMeta(JoinArgs(args)) + "$"
}

// quoteMeta is regexp.QuoteMeta plus "-" and " ", which it leaves alone,
// kept verbatim for readability: neither is special outside a class.
func quoteMeta(s string) string {
	const special = `\.+*?()|[]{}^$`
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(special, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// hiddenRune reports whether r (decoded with the given size) is something a
// person or a pattern author would not see for what it is: invalid UTF-8,
// control characters (C0, DEL, C1, so also tab and newline), format
// characters (bidi overrides and isolates, zero-width spaces and joiners,
// BOM, soft hyphen, tags), line and paragraph separators, whitespace other
// than the ASCII space (U+00A0, U+2000–U+200A, U+3000, ...), default-
// ignorable and blank-looking letters (U+115F, U+3164, U+2800), variation
// selectors, private-use code points and noncharacters.
func hiddenRune(r rune, size int) bool {
	switch {
	case r > ' ' && r < 0x7f:
		// Printable ASCII, most of any command line: none of the
		// classes below has a member here, and asking them costs.
		return false
	case r == utf8.RuneError && size <= 1:
		return true
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == ' ':
		return false
	case r == 0x2800: // braille blank renders as a space
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Zs, unicode.Zl, unicode.Zp, unicode.Co,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector,
		unicode.Noncharacter_Code_Point, unicode.White_Space)
}

// findHidden describes the first hidden character in args, or returns "".
func findHidden(args []string) string {
	for i, a := range args {
		for j := 0; j < len(a); {
			r, size := utf8.DecodeRuneInString(a[j:])
			if hiddenRune(r, size) {
				if r == utf8.RuneError && size <= 1 {
					return fmt.Sprintf("argument %d contains the invalid UTF-8 byte 0x%02x", i+1, a[j])
				}
				return fmt.Sprintf("argument %d contains %U, an invisible or control character", i+1, r)
			}
			j += size
		}
	}
	return ""
}

// Quote renders argv for people (prompts, logs, the audit trail) as a POSIX
// shell command line that pastes back to the same argv: plain words as
// they are, others in single quotes, and anything hidden (see hiddenRune)
// spelled out as an escape in $'…' quoting, so a bidi override or a
// no-break space cannot disguise what runs.
func Quote(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = quoteWord(a)
		if i == 0 && parts[i] == a && strings.Contains(a, "=") {
			// A plain NAME=value first word would paste as an assignment.
			parts[i] = "'" + a + "'"
		}
	}
	return strings.Join(parts, " ")
}

func quoteWord(a string) string {
	if a == "" {
		return "''"
	}
	plain, hidden := true, false
	for j := 0; j < len(a); {
		r, size := utf8.DecodeRuneInString(a[j:])
		if hiddenRune(r, size) {
			hidden = true
		}
		if !isPlain(r) {
			plain = false
		}
		j += size
	}
	if plain {
		return a
	}
	if !hidden {
		return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for j := 0; j < len(a); {
		r, size := utf8.DecodeRuneInString(a[j:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, a[j])
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case hiddenRune(r, size) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case hiddenRune(r, size) && r < 0x10000:
			fmt.Fprintf(&b, `\u%04X`, r)
		case hiddenRune(r, size):
			fmt.Fprintf(&b, `\U%08X`, r)
		default:
			b.WriteRune(r)
		}
		j += size
	}
	b.WriteByte('\'')
	return b.String()
}

func isPlain(r rune) bool {
	return r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("_@%+=:,./-", r))
}
