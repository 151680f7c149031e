package caddymodule

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/trail"
)

// The gate routes what it serves itself under /.clawguard/: the approvals
// API to the sidecar, everything else to the pairing server, whose
// decisions reach the audit trail of the state directory through its
// OnDecision hook before their answer goes out (the sidecar appends its
// exec records to the same trail; appends from several processes are
// safe).

// serveAdminRoute answers an admin path for the admin id; r carries the
// pairing.Caller.
func (g *Gate) serveAdminRoute(w http.ResponseWriter, r *http.Request, id authn.Identity) {
	p := g.pairing
	if isApprovalsPath(r.URL.Path) {
		p.server.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.sidecar.serve(w, r, id)
		})).ServeHTTP(w, r)
		return
	}
	p.server.ServeHTTP(w, r)
}

// pairingRecord is the trail record of a pairing decision.
type pairingRecord struct {
	Action    string `json:"action"` // approved, rejected, revoked, renamed or auto_approved
	RequestID string `json:"request_id,omitempty"`
	DeviceID  string `json:"device_id"`
	Name      string `json:"name,omitempty"`
	ClientIP  string `json:"client_ip,omitempty"`
}

// recordPairing is the pairing server's OnDecision: the decision goes to
// the audit trail under the admin who made it, or "local" for a local
// caller's request approved at once.
func (g *Gate) recordPairing(c pairing.Caller, d pairing.Decision) {
	who := c.Identity
	if who == "" {
		who = authn.Identity{Method: authn.MethodLocal}.String()
	}
	g.appendTrail(trail.KindPairing, who, pairingRecord{
		Action: d.Status, RequestID: d.RequestID, DeviceID: d.DeviceID, Name: d.Name, ClientIP: c.IP,
	})
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
