package caddymodule

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"

	"go.uber.org/zap"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/trail"
	"github.com/clawguard/clawguard/wire"
)

// The gate routes what it serves itself under /.clawguard/: the approvals
// API to the sidecar, everything else to the pairing server; pairing
// decisions are written to the audit trail of the state directory (the
// sidecar appends its exec records to the same trail; appends from several
// processes are safe) before their answer goes out.

// pairingDecision matches the admin API writes that decide on a device.
var pairingDecision = regexp.MustCompile(`^/\.clawguard/api/(pairing/[^/]+/(approve|reject)|devices/[^/]+/(revoke|rename))$`)

// pairRequestPath is where devices ask to pair; for a local caller with
// auto_approve_local the answer is a decision too.
const pairRequestPath = "/.clawguard/pair/request"

// serveAdminRoute answers an admin path for the admin id; r carries the
// pairing.Caller.
func (g *Gate) serveAdminRoute(w http.ResponseWriter, r *http.Request, id authn.Identity) {
	p := g.pairing
	switch {
	case isApprovalsPath(r.URL.Path):
		p.server.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.sidecar.serve(w, r, id)
		})).ServeHTTP(w, r)
	case r.Method == http.MethodPost && pairingDecision.MatchString(r.URL.Path):
		g.recordPairing(w, r, id.String(), nil)
	default:
		p.server.ServeHTTP(w, r)
	}
}

// serveOpenRoute answers an open path; a local caller's pairing request
// may be approved at once, which is recorded.
func (g *Gate) serveOpenRoute(w http.ResponseWriter, r *http.Request, local bool) {
	if !local || r.Method != http.MethodPost || r.URL.Path != pairRequestPath {
		g.pairing.server.ServeHTTP(w, r)
		return
	}
	// The body is needed for the record (the device's name); one byte over
	// the pairing server's limit keeps its own refusal intact.
	body, err := io.ReadAll(io.LimitReader(r.Body, pairing.MaxBodyBytes+1))
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "bad_request", "reading the request body: "+err.Error())
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	g.recordPairing(w, r, authn.Identity{Method: authn.MethodLocal}.String(), body)
}

// pairingRecord is the trail record of a pairing decision.
type pairingRecord struct {
	Action    string `json:"action"` // approved, rejected, revoked, renamed or auto_approved
	RequestID string `json:"request_id,omitempty"`
	DeviceID  string `json:"device_id"`
	Name      string `json:"name,omitempty"`
	ClientIP  string `json:"client_ip,omitempty"`
}

// recordPairing serves r with the pairing server and holds the answer back
// until the decision it reports, if any, is in the audit trail. pairBody is
// the body of a pairing request (nil for admin writes).
func (g *Gate) recordPairing(w http.ResponseWriter, r *http.Request, who string, pairBody []byte) {
	br := &bufferedResponse{ResponseWriter: w, status: http.StatusOK}
	g.pairing.server.ServeHTTP(br, r)
	if br.status == http.StatusOK {
		if rec, ok := decisionRecord(br.body.Bytes(), pairBody); ok {
			rec.ClientIP = pairing.CallerOf(r).IP
			g.appendTrail(trail.KindPairing, who, rec)
		}
	}
	w.WriteHeader(br.status)
	w.Write(br.body.Bytes())
}

// decisionRecord reads the decision from the pairing server's answer (and,
// for a pairing request, the request).
func decisionRecord(answer, pairBody []byte) (pairingRecord, bool) {
	if pairBody != nil {
		var resp pairing.PairResponse
		req, err := pairing.DecodePairRequest(pairBody)
		if err != nil || json.Unmarshal(answer, &resp) != nil || resp.Status != pairing.StatusApproved {
			return pairingRecord{}, false // queued for a person, who decides later
		}
		return pairingRecord{Action: "auto_approved", DeviceID: req.DeviceID, Name: req.Name}, true
	}
	var d pairing.Decision
	if json.Unmarshal(answer, &d) != nil || d.Status == "" {
		return pairingRecord{}, false
	}
	return pairingRecord{Action: d.Status, RequestID: d.RequestID, DeviceID: d.DeviceID, Name: d.Name}, true
}

// appendTrail writes a record to the audit trail of the (absolute) state
// directory; a failure is logged (the decision itself has been made).
func (g *Gate) appendTrail(kind, who string, fields any) {
	t, err := trail.Open(trail.Dir(g.pairing.key), trail.Options{})
	if err == nil {
		_, err = t.Append(kind, who, fields)
	}
	if err != nil {
		g.logger.Error("audit trail: record not written", zap.String("kind", kind), zap.String("identity", who), zap.Error(err))
	}
}

// bufferedResponse holds a handler's answer back. Headers go to the real
// writer's map directly; they are sent with WriteHeader later.
type bufferedResponse struct {
	http.ResponseWriter
	status  int
	written bool
	body    bytes.Buffer
}

func (b *bufferedResponse) WriteHeader(status int) {
	if !b.written {
		b.status, b.written = status, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.written = true
	return b.body.Write(p)
}
