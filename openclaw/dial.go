package openclaw

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// parseGateway checks the gateway URL: ws or wss, a host, no credentials
// or query in it (secrets stay out of URLs), and plain ws only to hosts
// OpenClaw's own client allows it for (loopback, private and link-local
// addresses, CGNAT, localhost, *.local, *.ts.net): elsewhere the token and
// the commands' output would cross the network in clear.
func parseGateway(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, configErr("Gateway", "required (ws:// or wss:// URL of the gateway)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, configErr("Gateway", "%w", err)
	}
	switch {
	case u.Scheme != "ws" && u.Scheme != "wss":
		return nil, configErr("Gateway", "scheme %q: want ws or wss", u.Scheme)
	case u.Hostname() == "":
		return nil, configErr("Gateway", "no host in %q", raw)
	case u.User != nil:
		return nil, configErr("Gateway", "credentials in the URL are refused: set Node.Token or Node.Password")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, configErr("Gateway", "a query or fragment in the URL is refused (secrets stay out of URLs)")
	case u.Scheme == "ws" && !plaintextAllowed(u.Hostname()):
		return nil, configErr("Gateway", "plain ws:// to %s would send credentials in clear: use wss:// (or a loopback, private or tailnet address)", u.Hostname())
	}
	return u, nil
}

func plaintextAllowed(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".local") || strings.HasSuffix(h, ".ts.net") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || cgnat.Contains(ip) ||
		ip.Is6() && siteLocal.Contains(ip)
}

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	siteLocal = netip.MustParsePrefix("fec0::/10")
)

// parseFingerprint reads a SHA-256 certificate fingerprint: 64 hex digits,
// colons allowed, an optional "sha256:" prefix.
func parseFingerprint(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 7 && strings.EqualFold(s[:7], "sha256:") {
		s = s[7:]
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, configErr("TLSFingerprint", "want the certificate's SHA-256 as 64 hex digits (colons and a sha256: prefix allowed)")
	}
	return b, nil
}

// Fingerprint is the SHA-256 of a DER certificate in hex, the form
// Node.TLSFingerprint takes.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// httpClient is the client of the WebSocket handshake: the Node's dialer,
// no proxy from the environment, no redirects, HTTP/1.1, and with a pin a
// TLS check of the leaf certificate's fingerprint in place of the chain.
func (n *Node) httpClient() *http.Client {
	dial := n.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: handshakeTimeout}).DialContext
	}
	tr := &http.Transport{
		DialContext:         dial,
		TLSHandshakeTimeout: handshakeTimeout,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		DisableKeepAlives:   true,
	}
	if n.pin != nil {
		pin := n.pin
		tr.TLSClientConfig.InsecureSkipVerify = true // the pin replaces the chain
		tr.TLSClientConfig.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("gateway sent no TLS certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return &PinError{Want: hex.EncodeToString(pin), Got: hex.EncodeToString(sum[:])}
			}
			return nil
		}
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("gateway redirected the WebSocket handshake: refused")
		},
	}
}

// handshakeTimeout bounds dialing, TLS, the upgrade, the challenge and the
// connect response together (OpenClaw's preauth budget is 15 s).
const handshakeTimeout = 15 * time.Second
