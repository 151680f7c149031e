package pairing

import (
	"errors"
	"io"
	"net/http"

	"github.com/clawguard/clawguard/wire"
)

// apiCSP is the Content-Security-Policy of JSON responses: nothing may load.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// uiCSP allows the UI's own files and nothing else: no inline script or
// style, no framing, no plugins, same-origin fetches and WebSocket only.
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", apiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// writeError writes err as {"error","code"}; errors that are not *Error are
// internal (500) and their text is still shown: they name files, not secrets.
func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Msg: err.Error()}
	}
	wire.WriteError(w, e.Status, e.Code, e.Msg)
}

// readBody reads a request body of at most MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, badRequest("body is larger than %d bytes", MaxBodyBytes)
		}
		return nil, badRequest("reading the body: %v", err)
	}
	return b, nil
}
