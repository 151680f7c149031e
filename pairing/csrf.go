package pairing

import (
	"crypto/hmac"
	"crypto/sha256"
	"strconv"
	"strings"
	"time"
)

// CSRFHeader carries the admin session's CSRF token on every write. (Not an
// X-Clawguard-* name: the gate strips those from requests.)
const CSRFHeader = "X-CSRF-Token"

// csrfTTL is how long a CSRF token is valid; the UI fetches a new one when
// a write is refused.
const csrfTTL = 12 * time.Hour

// csrfToken makes a token bound to identity: "v1.<expiry>.<mac>", where mac
// is an HMAC-SHA256 under the store's random in-memory key. It needs no
// server-side state; a restart invalidates every token.
func (s *Store) csrfToken(identity string, now time.Time) (string, time.Time) {
	exp := now.Add(csrfTTL).Truncate(time.Second)
	e := strconv.FormatInt(exp.Unix(), 10)
	return "v1." + e + "." + b64.EncodeToString(s.csrfMAC(identity, e)), exp.UTC()
}

func (s *Store) csrfMAC(identity, expiry string) []byte {
	m := hmac.New(sha256.New, s.csrfKey[:])
	m.Write([]byte("clawguard-csrf-v1|" + identity + "|" + expiry))
	return m.Sum(nil)
}

// checkCSRF reports whether token is a valid, unexpired token of identity.
func (s *Store) checkCSRF(identity, token string, now time.Time) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return false
	}
	mac, err := b64.DecodeString(parts[2])
	return err == nil && hmac.Equal(mac, s.csrfMAC(identity, parts[1]))
}
