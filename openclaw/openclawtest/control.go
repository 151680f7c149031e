package openclawtest

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/clawguard/clawguard/wire"
)

// InvokeRequest is the body of the control API's POST /invoke.
type InvokeRequest struct {
	NodeID         string          `json:"node_id"`
	Command        string          `json:"command"`
	Params         json.RawMessage `json:"params,omitempty"`
	TimeoutMs      int64           `json:"timeout_ms,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
}

// maxControlBody bounds a control request's body.
const maxControlBody = 1 << 20

// Handler serves the double's control API, JSON in and out:
//
//	GET  /nodes              {"nodes": [NodeInfo…]}
//	GET  /devices            {"devices": [Device…]}
//	GET  /pairing            {"pending": [PairingRequest…]}
//	POST /pairing/approve    {"request_id": "…"} → {"ok": true}
//	POST /pairing/reject     {"request_id": "…"} → {"ok": true}
//	POST /invoke             InvokeRequest → InvokeResult
//	GET  /received?method=M  {"received": [Received…]}
//
// Errors are {"error", "code"} with 400, 401, 404 or 405. With a non-empty
// token every request must carry "Authorization: Bearer <token>".
func (s *Server) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nodes", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, map[string]any{"nodes": s.Nodes()})
	})
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, map[string]any{"devices": s.Devices()})
	})
	mux.HandleFunc("GET /pairing", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, map[string]any{"pending": s.Pending()})
	})
	decide := func(do func(string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				RequestID string `json:"request_id"`
			}
			if !decodeBody(w, r, &body) {
				return
			}
			if err := do(body.RequestID); err != nil {
				wire.WriteError(w, http.StatusNotFound, "no_such_request", err.Error())
				return
			}
			wire.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
		}
	}
	mux.HandleFunc("POST /pairing/approve", decide(s.Approve))
	mux.HandleFunc("POST /pairing/reject", decide(s.Reject))
	mux.HandleFunc("POST /invoke", func(w http.ResponseWriter, r *http.Request) {
		var body InvokeRequest
		if !decodeBody(w, r, &body) {
			return
		}
		if body.NodeID == "" || body.Command == "" {
			wire.WriteError(w, http.StatusBadRequest, "bad_request", "node_id and command are required")
			return
		}
		var params any
		if len(body.Params) > 0 {
			params = body.Params
		}
		res, err := s.Invoke(r.Context(), body.NodeID, body.Command, params,
			time.Duration(body.TimeoutMs)*time.Millisecond, body.IdempotencyKey)
		if err != nil {
			wire.WriteError(w, http.StatusBadRequest, "invoke_failed", err.Error())
			return
		}
		wire.WriteJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("GET /received", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, map[string]any{"received": s.Received(r.URL.Query().Get("method"))})
	})
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			wire.WriteError(w, http.StatusUnauthorized, "unauthorized", "control API: missing or wrong bearer token")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		wire.WriteError(w, http.StatusBadRequest, "bad_request", "Content-Type must be application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "bad_request", "request body: "+err.Error())
		return false
	}
	return true
}
