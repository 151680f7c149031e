package wire

import (
	"encoding/json"
	"net/http"
)

// ErrorBody is the JSON body of every refusal and failure: a message for a
// person and a stable code for programs (unauthorized, rate_limited,
// no_sandbox_profile, …). Some APIs add fields next to these two.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// WriteJSON writes v as a JSON response with status. Responses are never
// cached: they carry decisions and state that change.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// WriteError writes the ErrorBody {msg, code} with status.
func WriteError(w http.ResponseWriter, status int, code, msg string) error {
	return WriteJSON(w, status, ErrorBody{Error: msg, Code: code})
}
