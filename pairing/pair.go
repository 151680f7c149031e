package pairing

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"time"

	"github.com/clawguard/clawguard/wire"
	"go.uber.org/zap"
)

// challenge hands out a single-use nonce.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	ch, err := s.store.nonces.issue(callerOf(r).Client, s.cfg.Now())
	if err != nil {
		writeError(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, ch)
}

// request takes a signed pairing request: approved at once for a local
// caller with auto-approval, else queued for a person.
func (s *Server) request(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	body, err := readBody(w, r)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	p, err := DecodePairRequest(body)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	now := s.cfg.Now()
	if err := s.checkSigned(p.Nonce, now, func() error { return p.Verify(now) }); err != nil {
		s.refuse(w, r, err)
		return
	}
	auto := s.cfg.AutoApproveLocal && c.Local
	req := Request{
		ID: newRequestID(), DeviceID: p.DeviceID, PublicKey: p.PublicKey, Name: p.Name,
		ClientIP: c.IP, Client: c.Client, Status: StatusPending,
		CreatedAt: now.UTC(), ExpiresAt: now.Add(s.cfg.PendingTTL).UTC(),
	}
	token, err := s.store.submit(req, auto, "auto:local", s.cfg.Limits)
	if err != nil {
		writeError(w, err)
		return
	}
	if auto {
		s.cfg.OnResult(ResultAutoApproved)
		s.cfg.Logger.Info("device paired (local auto-approval)", zap.String("device", p.DeviceID), zap.String("name", p.Name))
		s.cfg.OnDecision(c, Decision{Status: ResultAutoApproved, RequestID: req.ID, DeviceID: p.DeviceID, Name: p.Name})
		wire.WriteJSON(w, http.StatusOK, PairResponse{Status: StatusApproved, DeviceID: p.DeviceID, DeviceToken: token})
		return
	}
	s.cfg.OnResult(ResultPending)
	s.cfg.Logger.Info("pairing request waiting for approval", zap.String("request", req.ID),
		zap.String("device", p.DeviceID), zap.String("name", p.Name), zap.String("remote", c.IP))
	wire.WriteJSON(w, http.StatusAccepted, PairResponse{Status: StatusPending, RequestID: req.ID, DeviceID: p.DeviceID, ExpiresAt: &req.ExpiresAt})
}

// poll tells a device the state of its request, and hands out the token of
// an approved one exactly once.
func (s *Server) poll(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	p, err := DecodePollRequest(body)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	now := s.cfg.Now()
	req, ok := s.store.request(p.RequestID, now)
	if !ok {
		// Not counted as a failure: a device polling after the expiry is
		// not guessing anything (request ids are 128 random bits).
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeUnknownRequest, Msg: "no such pairing request, or it expired"})
		return
	}
	if req.DeviceID != p.DeviceID {
		s.refuse(w, r, &Error{Status: http.StatusUnauthorized, Code: CodeIDMismatch, Msg: "device_id is not the device of this request"})
		return
	}
	pub, _ := b64.DecodeString(req.PublicKey) // validated when stored
	if err := s.checkSigned(p.Nonce, now, func() error { return p.Verify(ed25519.PublicKey(pub), now) }); err != nil {
		s.refuse(w, r, err)
		return
	}
	switch req.Status {
	case StatusPending:
		wire.WriteJSON(w, http.StatusOK, PairResponse{Status: StatusPending, RequestID: req.ID, DeviceID: req.DeviceID, ExpiresAt: &req.ExpiresAt})
		return
	case StatusRejected:
		wire.WriteJSON(w, http.StatusOK, PairResponse{Status: StatusRejected, RequestID: req.ID, DeviceID: req.DeviceID})
		return
	}
	token, status, err := s.store.deliver(req.ID, req.DeviceID)
	if err != nil {
		writeError(w, err)
		return
	}
	if status == StatusApproved {
		s.cfg.Logger.Info("device collected its token", zap.String("device", req.DeviceID), zap.String("request", req.ID))
	}
	wire.WriteJSON(w, http.StatusOK, PairResponse{Status: status, RequestID: req.ID, DeviceID: req.DeviceID, DeviceToken: token})
}

// checkSigned checks the nonce exists, runs verify (id, time, signature),
// and only then uses the nonce up, so a forged message cannot burn the
// nonce of the device it impersonates.
func (s *Server) checkSigned(nonce string, now time.Time, verify func() error) error {
	badNonce := &Error{Status: http.StatusUnauthorized, Code: CodeInvalidNonce,
		Msg: "nonce is unknown, used or expired; get a new one from " + pairPrefix + "challenge"}
	if !s.store.nonces.valid(nonce, now) {
		return badNonce
	}
	if err := verify(); err != nil {
		return err
	}
	if !s.store.nonces.use(nonce, now) {
		return badNonce
	}
	return nil
}

// refuse answers a refused pairing message; one refused for its proof
// (401) counts as a failure for the rate limiter.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if errors.As(err, &e) && e.Status < 500 {
		if e.Status == http.StatusUnauthorized {
			s.cfg.OnFailure(callerOf(r))
		}
		s.cfg.OnResult(ResultInvalid)
	}
	writeError(w, err)
}
