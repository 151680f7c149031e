package httpsig

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// message is a request as RFC 9421 sees it: the parts derived components are
// made of, and the header fields.
type message struct {
	method    string
	scheme    string // lowercase
	authority string // normalized: lowercase host, default port removed
	target    string // request-target in origin form: path and "?query" as on the wire
	host      string // Host header as received, for a covered "host" field
	header    http.Header
}

// outgoingMessage describes req as Go's client will send it: the
// request-target is URL.RequestURI() and the Host header is req.Host or else
// URL.Host.
func outgoingMessage(req *http.Request) (message, error) {
	if req.URL == nil || req.URL.Scheme == "" || req.URL.Host == "" {
		return message{}, fmt.Errorf("request URL must be absolute (scheme and host), got %q", req.URL)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	scheme := strings.ToLower(req.URL.Scheme)
	return message{
		method:    req.Method,
		scheme:    scheme,
		authority: normalizeAuthority(scheme, host),
		target:    req.URL.RequestURI(),
		host:      host,
		header:    req.Header,
	}, nil
}

// incomingMessage describes r as a server received it. scheme and authority
// override what the request says (a verifier behind a TLS-terminating proxy
// is told the origin its clients sign for); empty means "from the request":
// https when r.TLS is set, else http, and the Host header.
func incomingMessage(r *http.Request, scheme, authority string) message {
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	scheme = strings.ToLower(scheme)
	if authority == "" {
		authority = r.Host
	}
	target := r.RequestURI
	if target == "" { // a request built in-process rather than read from the wire
		target = r.URL.RequestURI()
	}
	if i := strings.Index(target, "://"); i > 0 && !strings.HasPrefix(target, "/") {
		// absolute-form (a proxy request): keep the path and query only.
		rest := target[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			target = rest[j:]
		} else {
			target = "/"
		}
		if strings.HasPrefix(target, "?") {
			target = "/" + target
		}
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	return message{
		method:    method,
		scheme:    scheme,
		authority: normalizeAuthority(scheme, authority),
		target:    target,
		host:      r.Host,
		header:    r.Header,
	}
}

// normalizeAuthority lowercases the host and drops the scheme's default port
// (RFC 9421 §2.2.3, RFC 9110 §4.2.3).
func normalizeAuthority(scheme, hostport string) string {
	hostport = strings.ToLower(hostport)
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport // no port
	}
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return hostport
}

func (m *message) pathAndQuery() (path, query string) {
	path, query, _ = strings.Cut(m.target, "?")
	if path == "" {
		path = "/"
	}
	return path, query
}

// appendComponent appends the value of a covered component for the
// signature base to dst. Only the derived components listed here and header
// fields are supported; the caller has already checked that name is a valid
// identifier.
func (m *message) appendComponent(dst []byte, name string) ([]byte, error) {
	switch name {
	case "@method":
		return append(dst, m.method...), nil
	case "@target-uri":
		dst = append(dst, m.scheme...)
		dst = append(dst, "://"...)
		dst = append(dst, m.authority...)
		return append(dst, m.target...), nil
	case "@authority":
		return append(dst, m.authority...), nil
	case "@scheme":
		return append(dst, m.scheme...), nil
	case "@request-target":
		return append(dst, m.target...), nil
	case "@path":
		p, _ := m.pathAndQuery()
		return append(dst, p...), nil
	case "@query":
		_, q := m.pathAndQuery()
		return append(append(dst, '?'), q...), nil
	}
	if strings.HasPrefix(name, "@") {
		return dst, fmt.Errorf("derived component %q is not supported", name)
	}
	return m.appendField(dst, name)
}

// appendField appends a header field's lines combined per RFC 9421 §2.1:
// each value trimmed of surrounding whitespace, obsolete line folding
// replaced by one space, the lines joined with ", ". A value that still
// contains a line break or NUL is refused: it could forge lines of the
// signature base.
func (m *message) appendField(dst []byte, name string) ([]byte, error) {
	var lines []string
	if name == "host" {
		if m.host == "" {
			return dst, fmt.Errorf("covered header field %q is not in the request", name)
		}
		lines = []string{m.host}
	} else {
		// The canonical key, built on the stack (name is a lowercase token):
		// textproto.CanonicalMIMEHeaderKey would allocate it.
		var buf [64]byte
		key := append(buf[:0], name...)
		for i, upper := 0, true; i < len(key); i++ {
			if upper && isLCAlpha(key[i]) {
				key[i] -= 'a' - 'A'
			}
			upper = key[i] == '-'
		}
		var ok bool
		lines, ok = m.header[string(key)]
		if !ok {
			return dst, fmt.Errorf("covered header field %q is not in the request", name)
		}
	}
	for i, v := range lines {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		v = strings.Trim(unfold(v), " \t")
		if strings.ContainsAny(v, "\r\n\x00") {
			return dst, fmt.Errorf("header field %q contains a line break or NUL", name)
		}
		dst = append(dst, v...)
	}
	return dst, nil
}

// unfold replaces obsolete line folding (CRLF or LF followed by spaces or
// tabs) with a single space. Go's server already does this; requests built
// in-process may not have.
func unfold(v string) string {
	if !strings.ContainsAny(v, "\r\n") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		j := i
		if v[j] == '\r' && j+1 < len(v) && v[j+1] == '\n' {
			j++
		}
		if v[j] == '\n' && j+1 < len(v) && (v[j+1] == ' ' || v[j+1] == '\t') {
			for j+1 < len(v) && (v[j+1] == ' ' || v[j+1] == '\t') {
				j++
			}
			b.WriteByte(' ')
			i = j
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// validComponentName reports whether name is a derived component name or a
// lowercase header field name (an RFC 9110 token without uppercase letters).
func validComponentName(name string) bool {
	s := strings.TrimPrefix(name, "@")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || !isTChar(c) {
			return false
		}
	}
	return true
}

func isTChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
