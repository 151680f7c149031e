package authn

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func FuzzParseCredential(f *testing.F) {
	for _, s := range []string{"Bearer abc", "Basic YWxpY2U6cGFzcw==", "Basic !!", "bearer", "Digest x", "", "Basic Og=="} {
		f.Add(s, "chat, bearer.tok")
	}
	f.Fuzz(func(t *testing.T, auth, proto string) {
		h := http.Header{}
		if auth != "" {
			h.Set("Authorization", auth)
		}
		h.Set("Sec-WebSocket-Protocol", proto)
		c, problem := ParseCredential(h)
		if problem != "" && c != (Credential{}) {
			t.Fatalf("problem %q with a credential %+v", problem, c)
		}
		if c.Scheme == "bearer" && c.Token == "" {
			t.Fatal("bearer without token")
		}
		if c.Scheme == "basic" && c.User == "" {
			t.Fatal("basic without user")
		}
		StripSubprotocolToken(h)
		for _, v := range h.Values("Sec-Websocket-Protocol") {
			if c.FromSubprotocol && strings.Contains(v, "bearer."+c.Token) {
				t.Fatalf("token survived stripping: %q", v)
			}
		}
	})
}

func FuzzCredentialInURL(f *testing.F) {
	for _, s := range []string{"/?token=a", "/?a=b", "/%zz?token", "/?;token=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		CredentialInURL(u)
	})
}
