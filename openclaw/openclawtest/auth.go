package openclawtest

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/clawguard/clawguard/openclaw"
	"github.com/coder/websocket"
)

// TrustedProxy is OpenClaw's trusted-proxy auth: gateway.trustedProxies
// and gateway.auth.trustedProxy.{userHeader, requiredHeaders, allowUsers,
// allowLoopback}.
type TrustedProxy struct {
	// Proxies are the addresses (IPs or CIDRs) whose connections may vouch
	// for a user (gateway.trustedProxies). Required.
	Proxies []string
	// UserHeader names the header with the authenticated user. Required.
	UserHeader string
	// RequiredHeaders must all be present and non-empty. Default: none.
	RequiredHeaders []string
	// AllowUsers, when not empty, is the only users admitted. Default: all.
	AllowUsers []string
	// AllowLoopback admits a proxy on a loopback address (refused by
	// default: any local process could forge the headers).
	AllowLoopback bool
}

func (tp *TrustedProxy) check() error {
	if strings.TrimSpace(tp.UserHeader) == "" {
		return errors.New("openclawtest: trusted-proxy needs UserHeader (gateway.auth.trustedProxy.userHeader)")
	}
	for _, p := range tp.Proxies {
		if _, err := parseProxy(p); err != nil {
			return errors.New("openclawtest: trusted proxy " + p + ": " + err.Error())
		}
	}
	return nil
}

func parseProxy(p string) (netip.Prefix, error) {
	p = strings.TrimSpace(p)
	if strings.Contains(p, "/") {
		pfx, err := netip.ParsePrefix(p)
		return pfx.Masked(), err
	}
	a, err := netip.ParseAddr(p)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (tp *TrustedProxy) trusts(a netip.Addr) bool {
	a = a.Unmap()
	return slices.ContainsFunc(tp.Proxies, func(p string) bool {
		pfx, err := parseProxy(p)
		return err == nil && pfx.Contains(a)
	})
}

// authorize is OpenClaw's trusted-proxy decision: first its ingress
// attribution (a connection from a trusted proxy must name its client in
// X-Forwarded-For: the rightmost hop that is neither loopback nor a
// trusted proxy), then authorizeTrustedProxy (the peer must be a trusted
// proxy, not loopback unless allowed, not one of the host's own
// addresses; the required headers and the user must be there, the user
// allowed), then the attribution again: the user is admitted only through
// an attributed proxy.
func (tp *TrustedProxy) authorize(r *http.Request) (user, reason string) {
	if len(tp.Proxies) == 0 {
		return "", "trusted_proxy_no_proxies_configured"
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	peer, perr := netip.ParseAddr(host)
	if err != nil || perr != nil {
		return "", "trusted_proxy_untrusted_source"
	}
	peer = peer.Unmap()
	trusted := tp.trusts(peer)
	directLocal := peer.IsLoopback() && !hasProxyHeaders(r)
	attributed := false
	switch {
	case trusted && !directLocal:
		if tp.forwardedClient(r.Header.Get("X-Forwarded-For")) == "" {
			return "", "proxy_attribution_required"
		}
		attributed = true
	case !trusted && peer.IsLoopback() && !directLocal:
		return "", "proxy_attribution_required"
	case !trusted:
		return "", "trusted_proxy_untrusted_source"
	}
	if peer.IsLoopback() {
		if !tp.AllowLoopback {
			return "", "trusted_proxy_loopback_source"
		}
	} else if local, err := isLocalAddress(peer); err != nil {
		return "", "trusted_proxy_local_interface_check_failed"
	} else if local {
		return "", "trusted_proxy_local_interface_source"
	}
	for _, h := range tp.RequiredHeaders {
		if strings.TrimSpace(r.Header.Get(h)) == "" {
			return "", "trusted_proxy_missing_header_" + h
		}
	}
	user = strings.TrimSpace(r.Header.Get(tp.UserHeader))
	if user == "" {
		return "", "trusted_proxy_user_missing"
	}
	if len(tp.AllowUsers) > 0 && !slices.Contains(tp.AllowUsers, user) {
		return "", "trusted_proxy_user_not_allowed"
	}
	if !attributed {
		return "", "proxy_attribution_required"
	}
	return user, ""
}

// hasProxyHeaders reports forwarding headers on a request.
func hasProxyHeaders(r *http.Request) bool {
	for _, h := range []string{"X-Forwarded-For", "X-Real-Ip", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return false
}

func (tp *TrustedProxy) forwardedClient(xff string) string {
	hops := strings.Split(xff, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil || a.Unmap().IsLoopback() || tp.trusts(a) {
			continue
		}
		return a.String()
	}
	return ""
}

func isLocalAddress(a netip.Addr) (bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, err
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if l, ok := netip.AddrFromSlice(n.IP); ok && l.Unmap() == a {
				return true, nil
			}
		}
	}
	return false, nil
}

// authenticate is the connect's auth decision: the mode's shared auth
// first, then the device token (auth.deviceToken, else auth.token) of a
// paired device. It answers a refusal itself.
func (c *conn) authenticate(id string, p openclaw.ConnectParams) (method, user string, ok bool) {
	s := c.s
	a := p.Auth
	if a == nil {
		a = &openclaw.ConnectAuth{}
	}
	var reason string
	switch s.mode {
	case ModeNone:
		return ModeNone, "", true
	case ModeToken:
		reason = secretCheck(a.Token, s.opts.Token, "token")
	case ModePassword:
		reason = secretCheck(a.Password, s.opts.Password, "password")
	case ModeTrustedProxy:
		user, reason = s.opts.TrustedProxy.authorize(c.r)
	}
	if reason == "" {
		return s.mode, user, true
	}
	candidate, explicit := a.DeviceToken, a.DeviceToken != ""
	if !explicit {
		candidate = a.Token
	}
	if candidate != "" {
		if s.deviceTokenValid(p.Device.ID, roleOf(p), candidate) {
			return "device-token", "", true
		}
		if explicit {
			reason = "device_token_mismatch"
		}
	}
	provided := "none"
	switch {
	case a.Password != "":
		provided = "password"
	case a.Token != "":
		provided = "token"
	}
	msg := authFailureMessage(s.mode, provided, reason)
	canRetry := reason == "token_mismatch" && a.DeviceToken == "" && s.hasDeviceToken(p.Device.ID)
	c.refuse(id, openclaw.CodeInvalidRequest, msg, map[string]any{
		"code": authDetailCode(reason), "authReason": reason,
		"canRetryWithDeviceToken": canRetry, "recommendedNextStep": nextStep(reason, canRetry),
	}, websocket.StatusPolicyViolation)
	return "", "", false
}

func secretCheck(got, want, kind string) string {
	switch {
	case want == "":
		return kind + "_missing_config"
	case got == "":
		return kind + "_missing"
	case subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1:
		return kind + "_mismatch"
	}
	return ""
}

// authFailureMessage is OpenClaw's formatGatewayAuthFailureMessage for a
// client that is neither the CLI nor a browser UI.
func authFailureMessage(mode, provided, reason string) string {
	const tokenHint, passwordHint = "provide gateway auth token", "provide gateway auth password"
	switch reason {
	case "token_missing":
		return "unauthorized: gateway token missing (" + tokenHint + ")"
	case "token_mismatch":
		return "unauthorized: gateway token mismatch (" + tokenHint + ")"
	case "token_missing_config":
		return "unauthorized: gateway token not configured on gateway (set gateway.auth.token)"
	case "password_missing":
		return "unauthorized: gateway password missing (" + passwordHint + ")"
	case "password_mismatch":
		return "unauthorized: gateway password mismatch (" + passwordHint + ")"
	case "password_missing_config":
		return "unauthorized: gateway password not configured on gateway (set gateway.auth.password)"
	case "rate_limited":
		return "unauthorized: too many failed authentication attempts (retry later)"
	case "device_token_mismatch":
		return "unauthorized: device token mismatch (rotate/reissue device token)"
	}
	if mode == ModeToken && provided == "none" {
		return "unauthorized: gateway token missing (" + tokenHint + ")"
	}
	if mode == ModePassword && provided == "none" {
		return "unauthorized: gateway password missing (" + passwordHint + ")"
	}
	return "unauthorized"
}

// authDetailCode is OpenClaw's resolveAuthConnectErrorDetailCode.
func authDetailCode(reason string) string {
	switch reason {
	case "token_missing":
		return openclaw.DetailAuthTokenMissing
	case "token_mismatch":
		return openclaw.DetailAuthTokenMismatch
	case "token_missing_config":
		return openclaw.DetailAuthTokenNotConfigured
	case "password_missing":
		return openclaw.DetailAuthPasswordMissing
	case "password_mismatch":
		return openclaw.DetailAuthPasswordMismatch
	case "password_missing_config":
		return openclaw.DetailAuthPasswordNotConfigured
	case "rate_limited":
		return openclaw.DetailAuthRateLimited
	case "device_token_mismatch":
		return openclaw.DetailAuthDeviceTokenMismatch
	case "":
		return openclaw.DetailAuthRequired
	}
	return openclaw.DetailAuthUnauthorized
}

func nextStep(reason string, canRetry bool) string {
	switch {
	case canRetry:
		return "retry_with_device_token"
	case strings.HasSuffix(reason, "_missing") || strings.HasSuffix(reason, "_missing_config"):
		return "update_auth_configuration"
	case strings.HasSuffix(reason, "_mismatch"):
		return "update_auth_credentials"
	}
	return "review_auth_configuration"
}
