package audit

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseProcNetLine(t *testing.T) {
	for _, c := range []struct {
		line      string
		want      string
		listening bool
		uid       int
	}{
		{"   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0", "127.0.0.1:18789", true, 1000},
		{"   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1", "0.0.0.0:22", true, 0},
		{"   2: 0100007F:81BB 0100007F:A690 06 00000000:00000000 03:0000082C 00000000     0        0 0 3", "", false, 0},
		{"   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1", "[::1]:8080", true, 0},
		{"   1: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 8 1", "[::ffff:127.0.0.1]:80", true, 0},
	} {
		s, listening, err := parseProcNetLine(c.line)
		if err != nil || listening != c.listening {
			t.Fatalf("%q: listening %v, %v", c.line, listening, err)
		}
		if listening && (s.addr.String() != c.want || s.uid != c.uid) {
			t.Errorf("%q: got %s uid %d, want %s uid %d", c.line, s.addr, s.uid, c.want, c.uid)
		}
	}
	for _, bad := range []string{"", "0: x", "   0: 0100007G:4965 00000000:0000 0A 0 0 0 0 0 1", "   0: 0100007F:49 00000000:0000 0A 0 0 0 0 0 1", "0 0100007F:4965 0 0A 0 0 0 0 0 1"} {
		if _, _, err := parseProcNetLine(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	if _, err := parseProcNet([]byte("  sl  local_address\n   0: 0100007F:4965 00000000:0000 0A 0 0 0 x 0 1\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad line is named by number: %v", err)
	}
}

func FuzzProcNetLine(f *testing.F) {
	f.Add("   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0")
	f.Add("   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1")
	f.Add("   2: 0100007F:81BB 0100007F:A690 06 00000000:00000000 03:0000082C 00000000     0        0 0 3")
	f.Add("0: ::: 0A 1 2 3 4 5 6")
	f.Fuzz(func(t *testing.T, line string) {
		s, listening, err := parseProcNetLine(line)
		if err != nil || !listening {
			return
		}
		// What parsed must print back: the address round-trips, the port
		// is the hex field.
		fields := strings.Fields(line)
		host, port, _ := strings.Cut(fields[1], ":")
		if p, _ := strconv.ParseUint(port, 16, 16); uint16(p) != s.addr.Port() {
			t.Fatalf("port %d from %q", s.addr.Port(), port)
		}
		if back, err := parseProcAddr(strings.ToUpper(host)); err != nil || back != s.addr.Addr() {
			t.Fatalf("address %s does not round-trip from %q", s.addr.Addr(), host)
		}
		if !s.addr.Addr().IsValid() || (s.addr.Addr().Is4() != (len(host) == 8)) {
			t.Fatalf("address family of %q: %s", host, s.addr.Addr())
		}
		_ = classifyIP(s.addr.Addr())
	})
}

func TestParseEnvFile(t *testing.T) {
	data := "\xef\xbb\xbf# comment\n\nexport A=1\nB = 'x # y'  # note\nC=\"q\\\"u\\nv\"\r\nD=bare value # c\nE=\nbroken line\nF='unterminated\n9X=1\nG=\"ok\" trailing\nH=last"
	entries, bad := parseEnvFile([]byte(data))
	got := map[string]string{}
	for _, e := range entries {
		got[e.key] = e.value
		if line := data[e.start:e.end]; !strings.Contains(line, e.key) || strings.ContainsAny(line, "\r\n") {
			t.Errorf("%s: span %q", e.key, line)
		}
	}
	want := map[string]string{"A": "1", "B": "x # y", "C": "q\"u\nv", "D": "bare value", "E": "", "H": "last"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(entries) != len(want) {
		t.Errorf("entries %v", got)
	}
	var badLines []int
	for _, b := range bad {
		badLines = append(badLines, b.line)
	}
	if fmtInts(badLines) != "8,9,10,11" {
		t.Errorf("bad lines %v, want 8 9 10 11", badLines)
	}
}

func fmtInts(n []int) string {
	var s []string
	for _, v := range n {
		s = append(s, strconv.Itoa(v))
	}
	return strings.Join(s, ",")
}

func FuzzEnvFile(f *testing.F) {
	f.Add([]byte("A=1\nexport B='two'\nC=\"three\\n\" # c\n# comment\n\nbad\n"))
	f.Add([]byte("\xef\xbb\xbfKEY=value\r\nX=\"unterminated\n"))
	f.Add([]byte("=\n'=\nexport\nexport =x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, bad := parseEnvFile(data)
		last := 0
		for _, e := range entries {
			if e.start < 0 || e.end > len(data) || e.start > e.end || e.line <= last {
				t.Fatalf("entry %+v out of order or range (len %d)", e, len(data))
			}
			last = e.line
			if !validEnvKey(e.key) {
				t.Fatalf("invalid key %q", e.key)
			}
			// The line alone parses to the same entry: rewrites replace
			// exactly this span.
			k, v, err := parseEnvLine(string(data[e.start:e.end]))
			if err != nil || k != e.key || v != e.value {
				t.Fatalf("span %q reparses to %q=%q, %v", data[e.start:e.end], k, v, err)
			}
		}
		for _, b := range bad {
			if b.start < 0 || b.end > len(data) || b.start > b.end {
				t.Fatalf("bad line %+v out of range", b)
			}
		}
	})
}

func FuzzCaddyfileLines(f *testing.F) {
	f.Add([]byte("{\n\tadmin off\n}\nhttp://:1 {\n\tclawguard {\n\t\ttoken abc\n\t}\n\trespond \"x\ny\"\n}\n"))
	f.Add([]byte("a {\n}\n}\n}\n{\n"))
	f.Add([]byte("x <<EOF\nbody\nEOF\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, err := caddyfile.Tokenize(data, "Caddyfile")
		if err != nil {
			return
		}
		lines := splitLines(toks)
		n := 0
		for _, l := range lines {
			if len(l.tokens) == 0 {
				t.Fatal("an empty line")
			}
			n += len(l.tokens)
			for i, tok := range l.tokens {
				_ = slotOf(l, i)
				if tok.Line < 1 {
					t.Fatalf("token line %d", tok.Line)
				}
			}
		}
		if n > len(toks) {
			t.Fatalf("%d tokens in lines from %d", n, len(toks))
		}
	})
}

func FuzzVersion(f *testing.F) {
	for _, s := range []string{"go1.26.8", "v2.11.9", "go1.26rc1", "v2.11.10-0.20260101-abcdef", "devel +abc", "1.2", "x.y.z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseVersion(s)
		if !ok {
			return
		}
		if v.compare(v) != 0 {
			t.Fatalf("%s != itself", s)
		}
		w, ok := parseVersion(v.String())
		if !ok || w.n != v.n {
			t.Fatalf("%s -> %s does not round-trip", s, v)
		}
		e := versionEntry{Fixed: []string{v.String()}}
		if _, miss := e.missing(w); miss {
			t.Fatalf("%s misses its own fix", v)
		}
	})
}

func FuzzDelimitedSpans(f *testing.F) {
	f.Add([]byte("token abc # abc\nxabc abcx \"abc\""), "abc")
	f.Add([]byte(""), "")
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		for _, sp := range delimitedSpans(b, s) {
			if !bytes.Equal(b[sp[0]:sp[1]], []byte(s)) {
				t.Fatalf("span %v is not %q", sp, s)
			}
		}
	})
}

func FuzzJSONStrings(f *testing.F) {
	f.Add([]byte(`{"a": ["x", {"b": "y\n"}], "c": 1}`))
	f.Add([]byte(`{"sandboxes": {"main": {"env": {"K": "v"}}}}`))
	f.Add([]byte(`[1, "two", null, true]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		strs, err := jsonStrings(data)
		if err != nil {
			return
		}
		lines := 1 + bytes.Count(data, []byte("\n"))
		for _, s := range strs {
			if s.line < 1 || s.line > lines {
				t.Fatalf("line %d of %d", s.line, lines)
			}
			_ = lastKey(s.path)
			_ = vaultRef(s.path)
		}
	})
}
