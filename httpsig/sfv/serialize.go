package sfv

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// MarshalDictionary serializes d per RFC 8941 §4.1.2.
func MarshalDictionary(d Dictionary) (string, error) {
	var b strings.Builder
	for i, e := range d {
		if i > 0 {
			b.WriteString(", ")
		}
		if err := writeKey(&b, e.Key); err != nil {
			return "", err
		}
		if it := e.Member.Item; it != nil && it.Value == true {
			if err := writeParams(&b, it.Params); err != nil {
				return "", err
			}
			continue
		}
		b.WriteByte('=')
		if err := writeMember(&b, e.Member); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// MarshalList serializes l per RFC 8941 §4.1.1.
func MarshalList(l List) (string, error) {
	var b strings.Builder
	for i, m := range l {
		if i > 0 {
			b.WriteString(", ")
		}
		if err := writeMember(&b, m); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// MarshalItem serializes it per RFC 8941 §4.1.3.
func MarshalItem(it Item) (string, error) {
	var b strings.Builder
	err := writeItem(&b, it)
	return b.String(), err
}

// MarshalInnerList serializes il per RFC 8941 §4.1.1.1; RFC 9421 uses it for
// the "@signature-params" line.
func MarshalInnerList(il InnerList) (string, error) {
	var b strings.Builder
	err := writeInnerList(&b, il)
	return b.String(), err
}

func writeMember(b *strings.Builder, m Member) error {
	switch {
	case m.InnerList != nil:
		return writeInnerList(b, *m.InnerList)
	case m.Item != nil:
		return writeItem(b, *m.Item)
	default:
		return fmt.Errorf("sfv: empty member")
	}
}

func writeInnerList(b *strings.Builder, il InnerList) error {
	b.WriteByte('(')
	for i, it := range il.Items {
		if i > 0 {
			b.WriteByte(' ')
		}
		if err := writeItem(b, it); err != nil {
			return err
		}
	}
	b.WriteByte(')')
	return writeParams(b, il.Params)
}

func writeItem(b *strings.Builder, it Item) error {
	if err := writeBareItem(b, it.Value); err != nil {
		return err
	}
	return writeParams(b, it.Params)
}

func writeParams(b *strings.Builder, ps Params) error {
	for _, p := range ps {
		b.WriteByte(';')
		if err := writeKey(b, p.Key); err != nil {
			return err
		}
		if p.Value == true {
			continue
		}
		b.WriteByte('=')
		if err := writeBareItem(b, p.Value); err != nil {
			return err
		}
	}
	return nil
}

func writeKey(b *strings.Builder, k string) error {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(isLCAlpha(c) || c == '*' || i > 0 && (isDigit(c) || strings.IndexByte("_-.", c) >= 0)) {
			return fmt.Errorf("sfv: invalid key %q", k)
		}
	}
	if k == "" {
		return fmt.Errorf("sfv: empty key")
	}
	b.WriteString(k)
	return nil
}

const maxInteger = 999_999_999_999_999

func writeBareItem(b *strings.Builder, v any) error {
	switch v := v.(type) {
	case int64:
		if v > maxInteger || v < -maxInteger {
			return fmt.Errorf("sfv: integer %d out of range", v)
		}
		b.WriteString(strconv.FormatInt(v, 10))
	case int:
		return writeBareItem(b, int64(v))
	case Decimal:
		if v.Thousandths > maxInteger || v.Thousandths < -maxInteger {
			return fmt.Errorf("sfv: decimal %s out of range", v)
		}
		b.WriteString(v.String())
	case string:
		b.WriteByte('"')
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c < 0x20 || c > 0x7e {
				return fmt.Errorf("sfv: string contains byte 0x%02x", c)
			}
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	case Token:
		for i := 0; i < len(v); i++ {
			c := v[i]
			if !(i == 0 && (isAlpha(c) || c == '*') || i > 0 && (isTChar(c) || c == ':' || c == '/')) {
				return fmt.Errorf("sfv: invalid token %q", string(v))
			}
		}
		if v == "" {
			return fmt.Errorf("sfv: empty token")
		}
		b.WriteString(string(v))
	case []byte:
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(v))
		b.WriteByte(':')
	case bool:
		if v {
			b.WriteString("?1")
		} else {
			b.WriteString("?0")
		}
	default:
		return fmt.Errorf("sfv: unsupported bare item type %T", v)
	}
	return nil
}
