package caddymodule

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/clawguard/clawguard/wire"
	"go.uber.org/zap"
)

// refuse writes a JSON error. The handler answers itself rather than
// returning a caddyhttp error so clients always get the documented body.
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) error {
	if c := g.logger.Check(zap.InfoLevel, "request refused"); c != nil {
		c.Write(zap.Int("status", status), zap.String("code", code), zap.String("remote", r.RemoteAddr),
			zap.String("method", r.Method), zap.String("path", r.URL.Path))
	}
	return wire.WriteError(w, status, code, msg)
}

func (g *Gate) unauthorized(w http.ResponseWriter, r *http.Request, code, msg string) error {
	if g.challenge != "" {
		w.Header().Set("WWW-Authenticate", g.challenge)
	}
	return g.refuse(w, r, http.StatusUnauthorized, code, msg)
}

func (g *Gate) tooMany(w http.ResponseWriter, r *http.Request, retry time.Duration) error {
	g.metrics.rateLimited.Inc()
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	return g.refuse(w, r, http.StatusTooManyRequests, "rate_limited", "too many failed attempts; retry later")
}
