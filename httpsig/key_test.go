package httpsig

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	rfc, _ := base64.StdEncoding.DecodeString(rfcKeyB15)
	raw := "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		in   string
		want []byte
	}{
		{raw, []byte(raw)},
		{raw + "\n", []byte(raw)},
		{raw + "\r\n", []byte(raw)},
		{raw + "\n\n", []byte(raw + "\n")}, // only one newline is dropped
		{" " + raw, []byte(" " + raw)},     // other whitespace is part of the key
		{"base64:" + rfcKeyB15, rfc},
		{"base64:" + strings.TrimRight(rfcKeyB15, "=") + "\n", rfc},
		{"base64:" + base64.RawURLEncoding.EncodeToString(rfc), rfc},
	} {
		got, err := ParseKey([]byte(tc.in))
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("ParseKey(%q) = %q, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"", "short\n", raw[:31], "base64:" + base64.StdEncoding.EncodeToString([]byte(raw[:31])), "base64:not*base64"} {
		if k, err := ParseKey([]byte(bad)); err == nil {
			t.Errorf("ParseKey(%q) = %q, want an error", bad, k)
		} else if strings.Contains(err.Error(), raw[:10]) {
			t.Errorf("ParseKey error %q repeats the key", err)
		}
	}
}
