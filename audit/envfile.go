package audit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// envEntry is one KEY=VALUE line of an env file.
type envEntry struct {
	key, value string
	line       int // 1-based
	// start and end are the byte offsets of the line in the file, without
	// its line ending: a rewrite replaces exactly this span.
	start, end int
}

// envLineError is a line of an env file that is not KEY=VALUE.
type envLineError struct {
	line       int
	start, end int
	err        error
}

func (e envLineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }

// parseEnvFile parses the env-file dialect shared by systemd's
// EnvironmentFile, docker --env-file and dotenv: KEY=VALUE lines, an
// optional "export ", blank lines and # comments, single quotes (literal),
// double quotes (backslash escapes) or a bare value ending at " #".
// Values spanning lines are not supported; such lines come back as errors,
// so a caller can still scan their text.
func parseEnvFile(data []byte) ([]envEntry, []envLineError) {
	var entries []envEntry
	var bad []envLineError
	off := 0
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		off = 3
	}
	for n := 1; off < len(data); n++ {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end < 0 {
			end = len(data)
		} else {
			end += off
			next = end + 1
		}
		lineEnd := end
		if lineEnd > off && data[lineEnd-1] == '\r' {
			lineEnd--
		}
		key, value, err := parseEnvLine(string(data[off:lineEnd]))
		switch {
		case err != nil:
			bad = append(bad, envLineError{line: n, start: off, end: lineEnd, err: err})
		case key != "":
			entries = append(entries, envEntry{key: key, value: value, line: n, start: off, end: lineEnd})
		}
		off = next
	}
	return entries, bad
}

// parseEnvLine parses one line; blank lines and comments give key "".
func parseEnvLine(line string) (key, value string, err error) {
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] == '#' {
		return "", "", nil
	}
	if rest, ok := strings.CutPrefix(s, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		s = strings.TrimLeft(rest, " \t")
	}
	eq := strings.IndexByte(s, '=')
	if eq < 0 {
		return "", "", errors.New("want KEY=VALUE")
	}
	key = strings.TrimRight(s[:eq], " \t")
	if !validEnvKey(key) {
		return "", "", fmt.Errorf("%q is not a variable name", key)
	}
	v := strings.TrimLeft(s[eq+1:], " \t")
	switch {
	case v == "":
		return key, "", nil
	case v[0] == '\'':
		closing := strings.IndexByte(v[1:], '\'')
		if closing < 0 {
			return "", "", errors.New("unterminated single quote (values spanning lines are not supported)")
		}
		value, v = v[1:1+closing], v[2+closing:]
	case v[0] == '"':
		var b strings.Builder
		i := 1
		for ; i < len(v) && v[i] != '"'; i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				default:
					b.WriteByte(v[i])
				}
				continue
			}
			b.WriteByte(v[i])
		}
		if i >= len(v) {
			return "", "", errors.New("unterminated double quote (values spanning lines are not supported)")
		}
		value, v = b.String(), v[i+1:]
	default:
		if c := strings.Index(v, " #"); c >= 0 {
			v = v[:c]
		} else if c := strings.Index(v, "\t#"); c >= 0 {
			v = v[:c]
		}
		return key, strings.TrimRight(v, " \t"), nil
	}
	if rest := strings.TrimLeft(v, " \t"); rest != "" && rest[0] != '#' {
		return "", "", fmt.Errorf("unexpected %q after the quoted value", rest)
	}
	return key, value, nil
}

// validEnvKey reports whether s is a variable name: letters, digits and
// '_', not starting with a digit (dots and dashes are accepted too, as
// dotenv does).
func validEnvKey(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case i > 0 && ('0' <= c && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}
