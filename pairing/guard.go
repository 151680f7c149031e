package pairing

import "net/http"

// Guard protects a handler outside this package that the gate serves under
// the admin API — the exec approvals the gate forwards to the sidecar —
// exactly like the admin API's own routes: the security headers, an
// identity the gate established (WithCaller), no cross-site request, and on
// POST the session's CSRF token. GET and POST are allowed; other methods
// get 405.
func (s *Server) Guard(h http.Handler) http.Handler {
	get, post := s.admin("GET", h.ServeHTTP), s.admin("POST", h.ServeHTTP)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if r.Method == "POST" {
			post.ServeHTTP(w, r)
			return
		}
		get.ServeHTTP(w, r)
	})
}
