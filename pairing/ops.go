package pairing

import (
	"fmt"
	"net/http"
	"time"
)

// Limits bound the pending requests, so unauthenticated clients cannot grow
// the store without end.
type Limits struct {
	// MaxPending is the most pending requests at once. Default: 1000.
	MaxPending int
	// PerClient is the most pending requests of one client (address, or
	// /64 for IPv6). Default: 20.
	PerClient int
}

// Default limits.
const (
	DefaultMaxPending = 1000
	DefaultPerClient  = 20
)

func notFound(what, id string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Msg: fmt.Sprintf("no %s %s", what, id)}
}

// submit stores a verified pairing request: it supersedes every earlier
// request of the same device and, with auto, approves it at once and returns
// the device token.
func (s *Store) submit(r Request, auto bool, by string, lim Limits) (token string, err error) {
	err = s.update(func(st *State, now time.Time) error {
		var superseded []string
		pending, mine := 0, 0
		for id, old := range st.Requests {
			switch {
			case old.DeviceID == r.DeviceID:
				superseded = append(superseded, id)
			case old.Status == StatusPending:
				pending++
				if old.Client == r.Client {
					mine++
				}
			}
		}
		if !auto && (pending >= lim.MaxPending || mine >= lim.PerClient) {
			return &Error{Status: http.StatusTooManyRequests, Code: CodeTooMany,
				Msg: "too many pairing requests are waiting for approval; try again later"}
		}
		for _, id := range superseded {
			delete(st.Requests, id)
		}
		if !auto {
			cp := r
			st.Requests[r.ID] = &cp
			return nil
		}
		d := upsertDevice(st, &r, by, now)
		var hash string
		token, hash = newToken()
		issued := now.UTC()
		d.TokenHash, d.TokenIssuedAt = hash, &issued
		return nil
	})
	return token, err
}

// upsertDevice records the approval of r's device: a new record, or the
// existing one renamed, un-revoked and stripped of its old token (the device
// asked to pair again, so it gets a new token).
func upsertDevice(st *State, r *Request, by string, now time.Time) *Device {
	now = now.UTC()
	d := st.Devices[r.DeviceID]
	if d == nil {
		d = &Device{ID: r.DeviceID, PublicKey: r.PublicKey, CreatedAt: now}
		st.Devices[d.ID] = d
	}
	d.Name, d.ApprovedAt, d.ApprovedBy = r.Name, now, by
	d.RevokedAt, d.RevokedBy = nil, ""
	d.TokenHash, d.TokenIssuedAt = "", nil
	return d
}

// Approve approves a pending request on behalf of by. The device is listed
// at once; it collects its token by polling within ttl.
func (s *Store) Approve(id, by string, ttl time.Duration) (Request, error) {
	var out Request
	err := s.update(func(st *State, now time.Time) error {
		r, err := pendingRequest(st, id)
		if err != nil {
			return err
		}
		upsertDevice(st, r, by, now)
		decided := now.UTC()
		r.Status, r.DecidedAt, r.DecidedBy, r.ExpiresAt = StatusApproved, &decided, by, decided.Add(ttl)
		out = *r
		return nil
	})
	return out, err
}

// Reject rejects a pending request on behalf of by.
func (s *Store) Reject(id, by string) (Request, error) {
	var out Request
	err := s.update(func(st *State, now time.Time) error {
		r, err := pendingRequest(st, id)
		if err != nil {
			return err
		}
		decided := now.UTC()
		r.Status, r.DecidedAt, r.DecidedBy = StatusRejected, &decided, by
		out = *r
		return nil
	})
	return out, err
}

func pendingRequest(st *State, id string) (*Request, error) {
	r := st.Requests[id]
	if r == nil {
		return nil, notFound("pending pairing request", id)
	}
	if r.Status != StatusPending {
		return nil, &Error{Status: http.StatusConflict, Code: "already_decided", Msg: fmt.Sprintf("request %s is already %s", id, r.Status)}
	}
	return r, nil
}

// deliver hands out the token of an approved request once: it mints the
// token, stores its hash and deletes the request, so a second poll finds
// nothing. A device revoked since the approval gets "rejected".
func (s *Store) deliver(id, deviceID string) (token, status string, err error) {
	err = s.update(func(st *State, now time.Time) error {
		r := st.Requests[id]
		if r == nil || r.DeviceID != deviceID || r.Status != StatusApproved {
			return &Error{Status: http.StatusNotFound, Code: CodeUnknownRequest, Msg: "no such pairing request, or it expired"}
		}
		delete(st.Requests, id)
		d := st.Devices[deviceID]
		if d == nil || d.RevokedAt != nil || d.PublicKey != r.PublicKey {
			status = StatusRejected
			return nil
		}
		var hash string
		token, hash = newToken()
		issued := now.UTC()
		d.TokenHash, d.TokenIssuedAt = hash, &issued
		status = StatusApproved
		return nil
	})
	return token, status, err
}

// Revoke revokes a device: its token stops working (in this process at
// once, in others within their watch interval) and an approval it has not
// collected is withdrawn. Revoking a revoked device changes nothing.
func (s *Store) Revoke(id, by string) (Device, error) {
	var out Device
	err := s.update(func(st *State, now time.Time) error {
		d := st.Devices[id]
		if d == nil {
			return notFound("device", id)
		}
		if d.RevokedAt == nil {
			at := now.UTC()
			d.RevokedAt, d.RevokedBy = &at, by
		}
		d.TokenHash = ""
		for rid, r := range st.Requests {
			if r.DeviceID == id {
				delete(st.Requests, rid)
			}
		}
		out = *d
		return nil
	})
	out.TokenHash = ""
	return out, err
}

// Rename renames a device.
func (s *Store) Rename(id, name string) (Device, error) {
	if err := ValidName(name); err != nil {
		return Device{}, badRequest("name: %v", err)
	}
	var out Device
	err := s.update(func(st *State, _ time.Time) error {
		d := st.Devices[id]
		if d == nil {
			return notFound("device", id)
		}
		d.Name = name
		out = *d
		return nil
	})
	out.TokenHash = ""
	return out, err
}
