package caddymodule

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// errorBody is the JSON body of every refusal (DESIGN.md, "Failures").
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// refuse writes a JSON error. The handler answers itself rather than
// returning a caddyhttp error so clients always get the documented body.
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) error {
	if c := g.logger.Check(zap.InfoLevel, "request refused"); c != nil {
		c.Write(zap.Int("status", status), zap.String("code", code), zap.String("remote", r.RemoteAddr),
			zap.String("method", r.Method), zap.String("path", r.URL.Path))
	}
	return writeErrorBody(w, status, code, msg)
}

// writeErrorBody writes the JSON refusal body with its status.
func writeErrorBody(w http.ResponseWriter, status int, code, msg string) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(errorBody{Error: msg, Code: code})
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
