package authn

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// Credential is what a request presented in its Authorization header or in
// its WebSocket subprotocols.
type Credential struct {
	// Scheme is "bearer" or "basic"; empty when none was presented.
	Scheme   string
	Token    string // bearer token
	User     string // basic user
	Password string // basic password
	// FromSubprotocol is set when the bearer token came as the WebSocket
	// subprotocol "bearer.<token>".
	FromSubprotocol bool
}

// subprotocolPrefix marks a bearer token carried as a WebSocket subprotocol,
// the one place a browser's WebSocket API lets a page send a credential
// without putting it in the URL.
const subprotocolPrefix = "bearer."

// basicStackBytes is how much of a decoded Basic credential is decoded
// without a heap buffer: a user name and a password of bcrypt's 72 bytes.
const basicStackBytes = 256

// ParseCredential extracts the credential of a request. A malformed
// Authorization header is an error (ok false with a reason) rather than being
// ignored, so a client learns its header is wrong instead of silently falling
// back to another method.
func ParseCredential(h http.Header) (c Credential, problem string) {
	if auth := first(h, "Authorization"); auth != "" {
		return parseAuthorization(auth)
	}
	for _, v := range h["Sec-Websocket-Protocol"] {
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			if tok, ok := strings.CutPrefix(p, subprotocolPrefix); ok {
				if tok == "" {
					return Credential{}, "empty bearer subprotocol"
				}
				return Credential{Scheme: "bearer", Token: tok, FromSubprotocol: true}, ""
			}
		}
	}
	return Credential{}, ""
}

// first is h.Get(key) for a key given in canonical form, as net/http
// stores the keys of a request's header: the same lookup, without
// canonicalising key again on every request.
func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func parseAuthorization(auth string) (Credential, string) {
	scheme, rest, ok := strings.Cut(auth, " ")
	if !ok {
		return Credential{}, "malformed Authorization header"
	}
	rest = strings.TrimLeft(rest, " ")
	switch {
	case strings.EqualFold(scheme, "bearer"):
		if rest == "" || strings.ContainsAny(rest, " \t") {
			return Credential{}, "malformed bearer token"
		}
		return Credential{Scheme: "bearer", Token: rest}, ""
	case strings.EqualFold(scheme, "basic"):
		// Decoded on the stack: one allocation (the string) per request.
		var buf [basicStackBytes]byte
		raw := buf[:0]
		if n := base64.StdEncoding.DecodedLen(len(rest)); n > len(buf) {
			raw = make([]byte, 0, n)
		}
		raw, err := base64.StdEncoding.AppendDecode(raw, []byte(rest))
		if err != nil {
			return Credential{}, "malformed basic credentials"
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok || user == "" {
			return Credential{}, "malformed basic credentials"
		}
		return Credential{Scheme: "basic", User: user, Password: pass}, ""
	default:
		return Credential{}, "unsupported Authorization scheme"
	}
}

// StripSubprotocolToken removes the "bearer.<token>" entry from the offered
// WebSocket subprotocols so the token never reaches the upstream, keeping the
// real subprotocols the client offered.
func StripSubprotocolToken(h http.Header) {
	vals := h.Values("Sec-Websocket-Protocol")
	if len(vals) == 0 {
		return
	}
	var keep []string
	for _, v := range vals {
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			if p != "" && !strings.HasPrefix(p, subprotocolPrefix) {
				keep = append(keep, p)
			}
		}
	}
	if len(keep) == 0 {
		h.Del("Sec-Websocket-Protocol")
		return
	}
	h.Set("Sec-Websocket-Protocol", strings.Join(keep, ", "))
}

// urlCredentialParams are query parameters that carry credentials in the
// gateways clawguard fronts. A URL ends up in browser history, proxy logs and
// Referer headers, so such requests are refused outright, whatever the value.
var urlCredentialParams = []string{
	"token", "access_token", "auth_token", "authorization", "bearer",
	"password", "passwd", "api_key", "apikey", "secret",
}

// CredentialInURL reports the first query parameter (or URL userinfo) that
// looks like a credential, or "" when there is none.
func CredentialInURL(u *url.URL) string {
	if u.User != nil {
		return "userinfo"
	}
	if u.RawQuery == "" {
		return ""
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil && len(q) == 0 {
		return ""
	}
	for name := range q {
		for _, c := range urlCredentialParams {
			if strings.EqualFold(name, c) {
				return name
			}
		}
	}
	return ""
}
