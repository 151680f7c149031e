package pairing

import (
	"net/http"
	"time"

	"github.com/clawguard/clawguard/wire"
	"go.uber.org/zap"
)

// Session is the answer of GET /.clawguard/api/session: who the caller is
// and the CSRF token its writes must carry.
type Session struct {
	Identity  string    `json:"identity"`
	CSRFToken string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Decision is the answer of approve, reject, revoke and rename.
type Decision struct {
	Status    string `json:"status"` // approved, rejected, revoked, renamed (auto_approved for OnDecision)
	RequestID string `json:"request_id,omitempty"`
	DeviceID  string `json:"device_id"`
	Name      string `json:"name,omitempty"`
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	id := callerOf(r).Identity
	tok, exp := s.store.csrfToken(id, s.cfg.Now())
	wire.WriteJSON(w, http.StatusOK, Session{Identity: id, CSRFToken: tok, ExpiresAt: exp})
}

// storeOK refuses to list from an unreadable store file rather than show a
// stale list as if it were current.
func (s *Server) storeOK(w http.ResponseWriter) bool {
	if err := s.store.Err(); err != nil {
		writeError(w, &Error{Status: http.StatusInternalServerError, Code: "store_unreadable", Msg: err.Error()})
		return false
	}
	return true
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	if !s.storeOK(w) {
		return
	}
	wire.WriteJSON(w, http.StatusOK, struct {
		Devices []DeviceView `json:"devices"`
	}{s.store.Devices()})
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request) {
	if !s.storeOK(w) {
		return
	}
	reqs := s.store.Requests(StatusPending, s.cfg.Now())
	for i := range reqs {
		reqs[i].Client = "" // the limiter's key; client_ip says it for people
	}
	wire.WriteJSON(w, http.StatusOK, struct {
		Requests []Request `json:"requests"`
	}{reqs})
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) { s.decide(w, r, StatusApproved) }

func (s *Server) reject(w http.ResponseWriter, r *http.Request) { s.decide(w, r, StatusRejected) }

// decide approves or rejects a pending request on behalf of the caller.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, status string) {
	by, id := callerOf(r).Identity, r.PathValue("request_id")
	var req Request
	var err error
	if status == StatusApproved {
		req, err = s.store.Approve(id, by, s.cfg.PendingTTL)
	} else {
		req, err = s.store.Reject(id, by)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	s.cfg.OnResult(status) // ResultApproved and ResultRejected are the statuses
	s.cfg.Logger.Info("pairing request "+status, zap.String("request", req.ID), zap.String("device", req.DeviceID),
		zap.String("name", req.Name), zap.String("by", by))
	s.answerDecision(w, r, Decision{Status: status, RequestID: req.ID, DeviceID: req.DeviceID, Name: req.Name})
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	by := callerOf(r).Identity
	d, err := s.store.Revoke(r.PathValue("device_id"), by)
	if err != nil {
		writeError(w, err)
		return
	}
	s.cfg.Logger.Info("device revoked", zap.String("device", d.ID), zap.String("name", d.Name), zap.String("by", by))
	s.answerDecision(w, r, Decision{Status: DeviceRevoked, DeviceID: d.ID, Name: d.Name})
}

// answerDecision reports d to OnDecision, then to the caller.
func (s *Server) answerDecision(w http.ResponseWriter, r *http.Request, d Decision) {
	s.cfg.OnDecision(callerOf(r), d)
	wire.WriteJSON(w, http.StatusOK, d)
}

// RenameBody is the body of POST /.clawguard/api/devices/{id}/rename.
type RenameBody struct {
	Name string `json:"name"`
}

func (s *Server) rename(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var rb RenameBody
	if err := decodeStrict(body, &rb); err != nil {
		writeError(w, err)
		return
	}
	d, err := s.store.Rename(r.PathValue("device_id"), rb.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	s.cfg.Logger.Info("device renamed", zap.String("device", d.ID), zap.String("name", d.Name), zap.String("by", callerOf(r).Identity))
	s.answerDecision(w, r, Decision{Status: "renamed", DeviceID: d.ID, Name: d.Name})
}
