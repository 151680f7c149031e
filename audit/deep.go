package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/clawguard/clawguard/wire"
)

// probeClientIP is the client address the unauthenticated probe claims to
// forward for (TEST-NET-3): the gate must treat it as remote.
const probeClientIP = "203.0.113.7"

// probeToken is the dummy credential put in URLs: the gate must refuse a
// URL carrying any credential, whatever its value, so no real token is
// ever sent where logs would keep it.
const probeToken = "clawguard-audit-probe-not-a-token"

// probeResult is a probe's HTTP answer.
type probeResult struct {
	status int
	code   string // the gate's JSON error code, if any
}

// probe sends one request to the running gate. Proxies from the
// environment are not used: the probe must reach this machine's gate.
func (a *auditor) probe(ctx context.Context, target string, header http.Header) (probeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opts.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return probeResult{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return probeResult{}, err
	}
	defer resp.Body.Close()
	var body wire.ErrorBody
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	return probeResult{status: resp.StatusCode, code: body.Code}, nil
}

// gateURL parses the configured gate URL.
func (a *auditor) gateURL() (*url.URL, error) {
	u, err := url.Parse(a.opts.GatewayURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gateway URL %q: want http(s)://host:port", a.opts.GatewayURL)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	u.RawQuery = ""
	return u, nil
}

// refused reports whether a status is the gate refusing a request.
func refused(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired, http.StatusTooManyRequests:
		return true
	}
	return false
}

func probeGateAuth(ctx context.Context, a *auditor) ([]Finding, error) {
	u, err := a.gateURL()
	if err != nil {
		return nil, err
	}
	h := http.Header{"X-Forwarded-For": {probeClientIP}, "User-Agent": {"clawguard-audit"}}
	res, err := a.probe(ctx, u.String(), h)
	if err != nil {
		return nil, skip(fmt.Sprintf("nothing answers at %s (%v); pass --gateway URL if the gate runs elsewhere", u, unwrapNet(err)))
	}
	if refused(res.status) {
		return nil, nil
	}
	return []Finding{{Severity: SeverityCritical,
		Finding: fmt.Sprintf("%s answered %d to a request without credentials from a non-local client (X-Forwarded-For: %s): it is not authenticated", u, res.status, probeClientIP),
		Remedy:  "put `clawguard { … }` at the top of the site block that serves " + u.Host + ", and reload Caddy"}}, nil
}

func probeGateURLToken(ctx context.Context, a *auditor) ([]Finding, error) {
	u, err := a.gateURL()
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, param := range []string{"token", "access_token"} {
		q := *u
		q.RawQuery = url.Values{param: {probeToken}}.Encode()
		// A local request: only the URL rule, not local trust, may refuse it.
		res, err := a.probe(ctx, q.String(), http.Header{"User-Agent": {"clawguard-audit"}})
		if err != nil {
			return nil, skip(fmt.Sprintf("nothing answers at %s (%v)", u, unwrapNet(err)))
		}
		switch {
		case res.code == "credentials_in_url":
			continue
		case refused(res.status) || res.status == http.StatusBadRequest:
			out = append(out, Finding{Severity: SeverityInfo,
				Finding: fmt.Sprintf("a URL with ?%s=… was refused (%d) but not by the gate's URL rule: is %s the clawguard gate?", param, res.status, u.Host),
				Remedy:  "check that --gateway points at the gate"})
		default:
			out = append(out, Finding{Severity: SeverityCritical,
				Finding: fmt.Sprintf("%s answered %d to a request with a credential in the URL (?%s=…): URLs end up in logs, history and Referer headers", u.Host, res.status, param),
				Remedy:  "put the clawguard gate in front: it refuses credentials in URLs"})
		}
	}
	return out, nil
}

func unwrapNet(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

// localAddrs returns this machine's addresses beyond loopback (link-local
// IPv6 excepted: it needs a zone to dial).
func localAddrs() []netip.Addr {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ia := range ifaddrs {
		pfx, err := netip.ParsePrefix(ia.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() && ip.Is6() {
			continue
		}
		out = append(out, ip)
	}
	return out
}

func probeAdminLoopback(ctx context.Context, a *auditor) ([]Finding, error) {
	admin := "localhost:2019"
	if c, err := a.adapted(); err == nil {
		admin = c.adminListen
	} else if !isSkip(err) {
		return nil, err
	}
	if admin == "" {
		return nil, skip("the admin endpoint is off")
	}
	la, err := parseListen(admin)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", admin, err)
	}
	if la.kind == addrUnix {
		return nil, skip("the admin endpoint is a unix socket")
	}
	addrs := localAddrs()
	if len(addrs) == 0 {
		return nil, skip("this machine has no address beyond loopback to probe from")
	}
	var out []Finding
	for _, ip := range addrs {
		target := netip.AddrPortFrom(ip, uint16(la.port)).String()
		d := net.Dialer{Timeout: min(a.opts.ProbeTimeout, time.Second)}
		conn, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			continue
		}
		conn.Close()
		out = append(out, Finding{Severity: SeverityCritical,
			Finding: fmt.Sprintf("Caddy's admin port %d answers on %s, not just on loopback: whoever reaches it can replace the config", la.port, target),
			Remedy:  "set `admin localhost:2019` in the Caddyfile's global options and reload"})
	}
	return out, nil
}

func probeSidecarSocket(ctx context.Context, a *auditor) ([]Finding, error) {
	path := a.opts.SidecarSocket
	fi, err := os.Lstat(path)
	if notExist(err) {
		return nil, skip("no sidecar socket at " + path + " (the sidecar is not running?)")
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return []Finding{{Severity: SeverityWarn, Path: path,
			Finding: fmt.Sprintf("%s is not a socket (%s)", path, fi.Mode().Type()),
			Remedy:  "remove it and restart the sidecar"}}, nil
	}
	var out []Finding
	if f := permFinding(path, fi, false, "the sidecar socket"); f != nil {
		f.fix = nil // the sidecar sets its mode when it starts; a restart fixes it
		if !strings.HasPrefix(f.Remedy, "chown") {
			f.Remedy = "chmod 600 " + path + ", and restart the sidecar (it creates the socket 0600)"
		}
		out = append(out, *f)
	}
	ctx, cancel := context.WithTimeout(ctx, a.opts.ProbeTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://sidecar/healthz", nil)
	resp, err := client.Do(req)
	if err != nil {
		out = append(out, Finding{Severity: SeverityWarn, Path: path,
			Finding: fmt.Sprintf("the sidecar socket exists but nothing answers on it (%v): a stale socket?", unwrapNet(err)),
			Remedy:  "restart the sidecar"})
		return out, nil
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		out = append(out, Finding{Severity: SeverityWarn, Path: path,
			Finding: "the sidecar answered /healthz with " + strconv.Itoa(resp.StatusCode),
			Remedy:  "look at the sidecar's log"})
	}
	return out, nil
}
