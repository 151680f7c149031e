package sidecar

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/wire"
)

func (s *Server) handleListSandboxes(w http.ResponseWriter, r *http.Request) {
	wire.WriteJSON(w, http.StatusOK, map[string]any{"sandboxes": s.opts.Sandboxes.List()})
}

func (s *Server) handleDeleteSandbox(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.opts.Sandboxes.Remove(id); err != nil {
		if errors.Is(err, sandbox.ErrNotFound) {
			writeError(w, &apiError{status: http.StatusNotFound, code: "not_found", msg: err.Error()})
			return
		}
		writeError(w, &apiError{status: http.StatusInternalServerError, code: "sandbox_error", msg: err.Error()})
		return
	}
	who, _ := IdentityFrom(r.Context())
	s.log.Info("sandbox deleted", "sandbox", id, "identity", who.Name)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.opts.Sandboxes.Ping(ctx); err != nil {
		wire.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
		return
	}
	body := map[string]string{"status": "ok"}
	if s.opts.Health != nil {
		for k, v := range s.opts.Health() {
			body[k] = v
		}
	}
	wire.WriteJSON(w, http.StatusOK, body)
}
