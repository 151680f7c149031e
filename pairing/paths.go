package pairing

import (
	"net/url"
	"path"
	"strings"
)

// IsPairPath reports whether path is one of the pairing protocol's
// endpoints, spelt exactly as the protocol does.
func IsPairPath(p string) bool {
	switch p {
	case pairPrefix + "challenge", pairPrefix + "request", pairPrefix + "poll":
		return true
	}
	return false
}

// Reserved reports whether an upstream might take path for one under
// PathPrefix: compared without case, percent-decoded again (double
// encoding), with backslashes as slashes, matrix parameters (";…") and
// anything after a NUL dropped from each segment, dot segments and repeated
// slashes resolved, and trailing dots and spaces of the first segment
// ignored. The gate answers every reserved path itself (or refuses it), so
// no spelling of /.clawguard/ reaches the upstream.
func Reserved(p string) bool {
	if !strings.Contains(p, "%") && !containsFold(p, "clawguard") {
		return false // the common case: no decoding, no allocation
	}
	for range 3 {
		if !strings.Contains(p, "%") {
			break
		}
		d, err := url.PathUnescape(p)
		if err != nil {
			break
		}
		p = d
	}
	p = strings.ToLower(strings.ReplaceAll(p, `\`, "/"))
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexAny(s, ";\x00"); j >= 0 {
			segs[i] = s[:j]
		}
	}
	p = path.Clean("/" + strings.Join(segs, "/"))
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return strings.TrimRight(first, ". \t") == strings.Trim(PathPrefix, "/")
}

// containsFold reports whether s contains the lowercase ASCII word sub in
// any case. It runs on every request path, so it compares only where the
// first letter matches.
func containsFold(s, sub string) bool {
	first := sub[0]
	for i := 0; i+len(sub) <= len(s); i++ {
		if c := s[i] | 0x20; c == first && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
