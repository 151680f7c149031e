package approvals

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ConfigError is a problem in an approval file, located by the path of the
// field it concerns (e.g. "agents.main.allow[2].args").
type ConfigError struct {
	Field string // empty for problems of the document as a whole
	Msg   string
}

func (e *ConfigError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func fieldErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Parse decodes and validates an approval file. It is strict: unknown or
// duplicate keys (including keys that differ only in case, which
// encoding/json would silently merge), wrong types, nulls and trailing data
// are errors, so what a person reads in the file is what is enforced.
func Parse(data []byte) (*Config, error) {
	var probe any
	if err := json.Unmarshal(data, &probe); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, se.Offset)
			return nil, &ConfigError{Msg: fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, se)}
		}
		return nil, &ConfigError{Msg: "invalid JSON: " + err.Error()}
	}
	top, err := decodeObject("", data, "version", "defaults", "agents")
	if err != nil {
		return nil, err
	}
	cfg := &Config{}
	raw, ok := top["version"]
	if !ok {
		return nil, fieldErr("version", "missing (this clawguard reads version %d)", Version)
	}
	if cfg.Version, err = decodeInt("version", raw); err != nil {
		return nil, err
	}
	if raw, ok := top["defaults"]; ok {
		if err := decodeDefaults(raw, &cfg.Defaults); err != nil {
			return nil, err
		}
	}
	if raw, ok := top["agents"]; ok {
		if cfg.Agents, err = decodeAgents(raw); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Validate checks every setting and compiles every pattern, reporting the
// first problem with its field path.
func (c *Config) Validate() error {
	_, err := compile(c)
	return err
}

func decodeDefaults(raw json.RawMessage, d *Defaults) error {
	obj, err := decodeObject("defaults", raw, "mode", "ask_timeout", "ask_fallback")
	if err != nil {
		return err
	}
	if v, ok := obj["mode"]; ok {
		s, err := decodeString("defaults.mode", v)
		if err != nil {
			return err
		}
		d.Mode = Mode(s)
	}
	if v, ok := obj["ask_timeout"]; ok {
		s, err := decodeString("defaults.ask_timeout", v)
		if err != nil {
			return err
		}
		t, err := time.ParseDuration(s)
		if err != nil {
			return fieldErr("defaults.ask_timeout", "%q is not a duration (e.g. \"2m\", \"30s\")", s)
		}
		if t <= 0 || t > MaxAskTimeout {
			return fieldErr("defaults.ask_timeout", "%s is out of range (more than 0, at most %s)", s, MaxAskTimeout)
		}
		d.AskTimeout = Duration(t)
	}
	if v, ok := obj["ask_fallback"]; ok {
		s, err := decodeString("defaults.ask_fallback", v)
		if err != nil {
			return err
		}
		d.AskFallback = Fallback(s)
	}
	return nil
}

func decodeAgents(raw json.RawMessage) (map[string]*Agent, error) {
	obj, err := decodeObject("agents", raw)
	if err != nil {
		return nil, err
	}
	agents := make(map[string]*Agent, len(obj))
	for name, v := range obj {
		field := agentField(name)
		a := &Agent{}
		fields, err := decodeObject(field, v, "mode", "elevated", "node", "allow")
		if err != nil {
			return nil, err
		}
		if v, ok := fields["mode"]; ok {
			s, err := decodeString(field+".mode", v)
			if err != nil {
				return nil, err
			}
			a.Mode = Mode(s)
		}
		if v, ok := fields["elevated"]; ok {
			b, err := decodeBool(field+".elevated", v)
			if err != nil {
				return nil, err
			}
			a.Elevated = &b
		}
		if v, ok := fields["node"]; ok {
			b, err := decodeBool(field+".node", v)
			if err != nil {
				return nil, err
			}
			a.Node = &b
		}
		if v, ok := fields["allow"]; ok {
			if a.Allow, err = decodeEntries(field+".allow", v); err != nil {
				return nil, err
			}
		}
		agents[name] = a
	}
	return agents, nil
}

func decodeEntries(field string, raw json.RawMessage) ([]Entry, error) {
	items, err := decodeArray(field, raw)
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, len(items))
	for i, v := range items {
		ef := fmt.Sprintf("%s[%d]", field, i)
		obj, err := decodeObject(ef, v, "path", "args", "env")
		if err != nil {
			return nil, err
		}
		e := &entries[i]
		p, ok := obj["path"]
		if !ok {
			return nil, fieldErr(ef+".path", "missing")
		}
		if e.Path, err = decodeString(ef+".path", p); err != nil {
			return nil, err
		}
		if a, ok := obj["args"]; ok {
			if e.Args, err = decodeString(ef+".args", a); err != nil {
				return nil, err
			}
		}
		if env, ok := obj["env"]; ok {
			names, err := decodeArray(ef+".env", env)
			if err != nil {
				return nil, err
			}
			for j, n := range names {
				s, err := decodeString(fmt.Sprintf("%s.env[%d]", ef, j), n)
				if err != nil {
					return nil, err
				}
				e.Env = append(e.Env, s)
			}
		}
	}
	return entries, nil
}

// decodeObject reads a JSON object's members in order, refusing duplicate
// keys (compared case-insensitively) and, when allowed is given, keys not in
// it.
func decodeObject(field string, raw []byte, allowed ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		msg := "must be a JSON object, not " + kindOf(raw)
		if field == "" {
			msg = "the document " + msg
		}
		return nil, &ConfigError{Field: field, Msg: msg}
	}
	out := map[string]json.RawMessage{}
	seen := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fieldErr(field, "%v", err)
		}
		key := tok.(string) // object keys are always strings
		sub := joinField(field, key)
		if prev, dup := seen[strings.ToLower(key)]; dup {
			return nil, fieldErr(sub, "duplicate key (also written as %q)", prev)
		}
		seen[strings.ToLower(key)] = key
		if allowed != nil && !slices.Contains(allowed, key) {
			return nil, fieldErr(sub, "unknown field (known: %s)", strings.Join(allowed, ", "))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fieldErr(sub, "%v", err)
		}
		out[key] = v
	}
	return out, nil
}

func decodeArray(field string, raw []byte) ([]json.RawMessage, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fieldErr(field, "must be a JSON array, not %s", kindOf(raw))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fieldErr(field, "%v", err)
	}
	return items, nil
}

func decodeString(field string, raw []byte) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fieldErr(field, "must be a string, not %s", kindOf(raw))
	}
	return s, nil
}

func decodeBool(field string, raw []byte) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fieldErr(field, "must be true or false, not %s", kindOf(raw))
}

func decodeInt(field string, raw []byte) (int, error) {
	n, err := strconv.Atoi(string(raw))
	if err != nil {
		return 0, fieldErr(field, "must be an integer, not %s", kindOf(raw))
	}
	return n, nil
}

func kindOf(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number (" + string(raw) + ")"
}

// agentField renders the field path of an agent, quoting names that would
// make the path ambiguous.
func agentField(name string) string { return joinField("agents", name) }

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_*-]+$`)

func joinField(parent, key string) string {
	if !plainKey.MatchString(key) {
		key = strconv.Quote(key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func lineCol(data []byte, offset int64) (line, col int) {
	// Offset counts the bytes read, including the offending one.
	pos := int(min(max(offset-1, 0), int64(len(data))))
	before := data[:pos]
	return bytes.Count(before, []byte("\n")) + 1, pos - bytes.LastIndexByte(before, '\n')
}
