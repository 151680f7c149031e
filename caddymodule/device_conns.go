package caddymodule

import (
	"bufio"
	"context"
	"net"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/clawguard/clawguard/pairing"
)

// trackDevice registers a request authenticated by a device token (v) with
// the pairing store, so that revoking the device ends it wherever the
// revocation is made: the returned request's context is cancelled and a
// connection hijacked through the returned writer (a WebSocket) is closed.
// done must be called when the request ends. Only device verdicts come
// here, and those exist only with pairing on.
func (g *Gate) trackDevice(w http.ResponseWriter, r *http.Request, v verdict) (http.ResponseWriter, *http.Request, func()) {
	ctx, cancel := context.WithCancel(r.Context())
	live := g.pairing.store.Track(v.cred.Token, cancel)
	dw := &deviceWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, live: live}
	return dw, r.WithContext(ctx), live.Done
}

// deviceWriter hands the connection a device's request hijacks to its
// pairing.Live. Everything else reaches the wrapped writer, through Unwrap
// for http.ResponseController.
type deviceWriter struct {
	caddyhttp.ResponseWriterWrapper
	live *pairing.Live
}

// Hijack takes over the connection and registers it to be closed when the
// device is revoked.
func (w *deviceWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.live.Hijacked(c)
	}
	return c, brw, err
}

// FlushError flushes the wrapped writer (http.ResponseController uses it).
func (w *deviceWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is FlushError for callers that look for an http.Flusher.
func (w *deviceWriter) Flush() { _ = w.FlushError() }
