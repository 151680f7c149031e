package pairing

import (
	"embed"
	"io/fs"
	"net/http"
)

// uiFiles is the web UI: plain HTML, CSS and JavaScript, no build step.
//
//go:embed ui
var uiFiles embed.FS

var uiFS, _ = fs.Sub(uiFiles, "ui")

var uiServer = http.StripPrefix(uiPrefix, http.FileServerFS(uiFS))

// serveUI serves the UI's files under the strict CSP.
func serveUI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", uiCSP)
	uiServer.ServeHTTP(w, r)
}
