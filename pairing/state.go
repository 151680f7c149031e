package pairing

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/clawguard/clawguard/wire"
)

// fileVersion is the version of the file format.
const fileVersion = 1

// maxFileBytes bounds the store file read into memory.
const maxFileBytes = 64 << 20

// State is the store's content: paired devices and pairing requests. It is
// immutable once published; mutations work on a clone.
type State struct {
	Devices  map[string]*Device  // by device id
	Requests map[string]*Request // by request id
}

func newState() *State {
	return &State{Devices: map[string]*Device{}, Requests: map[string]*Request{}}
}

// clone copies the state deeply enough for mutation: the records are copied,
// their pointer fields only ever replaced, never written through.
func (s *State) clone() *State {
	c := &State{Devices: make(map[string]*Device, len(s.Devices)), Requests: make(map[string]*Request, len(s.Requests))}
	for k, d := range s.Devices {
		cp := *d
		c.Devices[k] = &cp
	}
	for k, r := range s.Requests {
		cp := *r
		c.Requests[k] = &cp
	}
	return c
}

// fileFormat is devices.json.
type fileFormat struct {
	Version  int        `json:"version"`
	Devices  []*Device  `json:"devices"`
	Requests []*Request `json:"requests"`
}

// encode renders the state with records in a stable order (by creation, then
// id), so diffs of the file are readable.
func (s *State) encode() ([]byte, error) {
	f := fileFormat{Version: fileVersion, Devices: make([]*Device, 0, len(s.Devices)), Requests: make([]*Request, 0, len(s.Requests))}
	for _, d := range s.Devices {
		f.Devices = append(f.Devices, d)
	}
	for _, r := range s.Requests {
		f.Requests = append(f.Requests, r)
	}
	sort.Slice(f.Devices, func(i, j int) bool {
		a, b := f.Devices[i], f.Devices[j]
		return a.CreatedAt.Before(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.ID < b.ID
	})
	sort.Slice(f.Requests, func(i, j int) bool {
		a, b := f.Requests[i], f.Requests[j]
		return a.CreatedAt.Before(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.ID < b.ID
	})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", wire.FileDevices, err)
	}
	return buf.Bytes(), nil
}

// decodeState parses and validates devices.json. Errors name the record and
// the field, so a hand-edited file can be fixed.
func decodeState(data []byte) (*State, error) {
	var f fileFormat
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("version %d is not supported (want %d)", f.Version, fileVersion)
	}
	s := newState()
	for i, d := range f.Devices {
		if d == nil {
			return nil, fmt.Errorf("devices[%d]: null", i)
		}
		if err := d.validate(); err != nil {
			return nil, fmt.Errorf("devices[%d]: %w", i, err)
		}
		if _, dup := s.Devices[d.ID]; dup {
			return nil, fmt.Errorf("devices[%d]: device_id %s listed twice", i, d.ID)
		}
		s.Devices[d.ID] = d
	}
	for i, r := range f.Requests {
		if r == nil {
			return nil, fmt.Errorf("requests[%d]: null", i)
		}
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("requests[%d]: %w", i, err)
		}
		if _, dup := s.Requests[r.ID]; dup {
			return nil, fmt.Errorf("requests[%d]: request_id %s listed twice", i, r.ID)
		}
		s.Requests[r.ID] = r
	}
	return s, nil
}

func (d *Device) validate() error {
	if err := checkKey(d.ID, d.PublicKey); err != nil {
		return err
	}
	if err := ValidName(d.Name); err != nil {
		return fmt.Errorf("device %s: %w", d.ID, err)
	}
	if d.TokenHash != "" {
		if b, err := hex.DecodeString(d.TokenHash); err != nil || len(b) != 32 || hex.EncodeToString(b) != d.TokenHash {
			return fmt.Errorf("device %s: token_hash: want 64 lowercase hex digits", d.ID)
		}
	}
	if d.CreatedAt.IsZero() {
		return fmt.Errorf("device %s: created_at missing", d.ID)
	}
	return nil
}

func (r *Request) validate() error {
	if !validRequestID(r.ID) {
		return fmt.Errorf("request_id %q: not a request id", r.ID)
	}
	if err := checkKey(r.DeviceID, r.PublicKey); err != nil {
		return fmt.Errorf("request %s: %w", r.ID, err)
	}
	if err := ValidName(r.Name); err != nil {
		return fmt.Errorf("request %s: %w", r.ID, err)
	}
	switch r.Status {
	case StatusPending, StatusApproved, StatusRejected:
	default:
		return fmt.Errorf("request %s: status %q is not pending, approved or rejected", r.ID, r.Status)
	}
	if r.CreatedAt.IsZero() || r.ExpiresAt.IsZero() {
		return fmt.Errorf("request %s: created_at and expires_at are required", r.ID)
	}
	return nil
}

// checkKey checks that id is the device id of the base64url key.
func checkKey(id, key string) error {
	if !validDeviceID(id) {
		return fmt.Errorf("device_id %q: want 64 lowercase hex digits", id)
	}
	pub, err := b64.DecodeString(key)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("device %s: public_key is not a base64url Ed25519 key", id)
	}
	if DeviceID(pub) != id {
		return fmt.Errorf("device %s: device_id is not the SHA-256 of public_key", id)
	}
	return nil
}

// prune drops requests that expired; it returns how many.
func (s *State) prune(now time.Time) int {
	n := 0
	for id, r := range s.Requests {
		if !now.Before(r.ExpiresAt) {
			delete(s.Requests, id)
			n++
		}
	}
	return n
}
