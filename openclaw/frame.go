package openclaw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Frame size limits. OpenClaw caps frames before hello-ok at 64 KiB and
// announces its limit after that in hello-ok.policy.maxPayload; the node
// never reads more than MaxFrame whatever the gateway announces.
const (
	MaxPreConnectFrame = 64 << 10
	MaxFrame           = 25 << 20
)

// Frame types of OpenClaw's gateway protocol.
const (
	TypeRequest  = "req"
	TypeResponse = "res"
	TypeEvent    = "event"
	TypeCancel   = "cancel"
)

// Frame is one JSON text frame of the gateway protocol. Which fields are
// set depends on Type: a request has ID, Method and Params; a response ID,
// OK, Payload and (when !OK) Error; an event Event, Payload and Seq; a
// cancel ID. A failed response may come without Error (OpenClaw's schema
// makes it optional). ParseFrame checks that the fields of the type are there and
// well typed; a frame of an unknown type parses with only Type set, so that
// callers can skip what a newer gateway adds.
type Frame struct {
	Type    string
	ID      string
	Method  string
	Params  json.RawMessage
	OK      bool
	Payload json.RawMessage
	Error   *ErrorShape
	Event   string
	Seq     *int64
}

// ErrorShape is the error of a response frame.
type ErrorShape struct {
	Code         string          `json:"code"`
	Message      string          `json:"message"`
	Details      json.RawMessage `json:"details,omitempty"`
	Retryable    bool            `json:"retryable,omitempty"`
	RetryAfterMs *int64          `json:"retryAfterMs,omitempty"`
}

// rawFrame is the union of every frame's fields, each kept raw so that a
// field of the wrong JSON type is reported by name.
type rawFrame struct {
	Type    json.RawMessage `json:"type"`
	ID      json.RawMessage `json:"id"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
	OK      json.RawMessage `json:"ok"`
	Payload json.RawMessage `json:"payload"`
	Error   json.RawMessage `json:"error"`
	Event   json.RawMessage `json:"event"`
	Seq     json.RawMessage `json:"seq"`
}

// ParseFrame parses one frame. The error says which field is missing or of
// the wrong type.
func ParseFrame(data []byte) (Frame, error) {
	var raw rawFrame
	if err := json.Unmarshal(data, &raw); err != nil {
		return Frame{}, fmt.Errorf("frame: not a JSON object: %w", err)
	}
	typ, err := nonEmptyString(raw.Type, "type")
	if err != nil {
		return Frame{}, fmt.Errorf("frame: %w", err)
	}
	f := Frame{Type: typ}
	switch typ {
	case TypeRequest:
		if f.ID, err = nonEmptyString(raw.ID, "id"); err != nil {
			break
		}
		if f.Method, err = nonEmptyString(raw.Method, "method"); err != nil {
			break
		}
		f.Params = present(raw.Params)
	case TypeResponse:
		if f.ID, err = nonEmptyString(raw.ID, "id"); err != nil {
			break
		}
		if raw.OK == nil {
			err = errors.New(`"ok" missing`)
			break
		}
		if err = json.Unmarshal(raw.OK, &f.OK); err != nil || isNull(raw.OK) {
			err = errors.New(`"ok" is not a boolean`)
			break
		}
		f.Payload = present(raw.Payload)
		if e := present(raw.Error); e != nil {
			f.Error, err = parseErrorShape(e)
		}
	case TypeEvent:
		if f.Event, err = nonEmptyString(raw.Event, "event"); err != nil {
			break
		}
		f.Payload = present(raw.Payload)
		if s := present(raw.Seq); s != nil {
			var n int64
			if n, err = nonNegativeInt(s, "seq"); err == nil {
				f.Seq = &n
			}
		}
	case TypeCancel:
		f.ID, err = nonEmptyString(raw.ID, "id")
	}
	if err != nil {
		return Frame{}, fmt.Errorf("frame: type %q: %w", typ, err)
	}
	return f, nil
}

func parseErrorShape(data json.RawMessage) (*ErrorShape, error) {
	var raw struct {
		Code         json.RawMessage `json:"code"`
		Message      json.RawMessage `json:"message"`
		Details      json.RawMessage `json:"details"`
		Retryable    json.RawMessage `json:"retryable"`
		RetryAfterMs json.RawMessage `json:"retryAfterMs"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, errors.New(`"error" is not an object`)
	}
	var e ErrorShape
	var err error
	if e.Code, err = nonEmptyString(raw.Code, "error.code"); err != nil {
		return nil, err
	}
	if e.Message, err = nonEmptyString(raw.Message, "error.message"); err != nil {
		return nil, err
	}
	e.Details = present(raw.Details)
	if r := present(raw.Retryable); r != nil {
		if json.Unmarshal(r, &e.Retryable) != nil {
			return nil, errors.New(`"error.retryable" is not a boolean`)
		}
	}
	if r := present(raw.RetryAfterMs); r != nil {
		n, err := nonNegativeInt(r, "error.retryAfterMs")
		if err != nil {
			return nil, err
		}
		e.RetryAfterMs = &n
	}
	return &e, nil
}

// Encode writes the frame as the gateway protocol's JSON text: the fields
// of its type only, and no HTML escaping (OpenClaw's JSON.stringify does
// none).
func (f Frame) Encode() ([]byte, error) {
	return encodeJSON(f)
}

// MarshalJSON writes the frame with the fields of its type only.
func (f Frame) MarshalJSON() ([]byte, error) {
	switch f.Type {
	case TypeRequest:
		return encodeJSON(struct {
			Type   string          `json:"type"`
			ID     string          `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params,omitempty"`
		}{f.Type, f.ID, f.Method, f.Params})
	case TypeResponse:
		return encodeJSON(struct {
			Type    string          `json:"type"`
			ID      string          `json:"id"`
			OK      bool            `json:"ok"`
			Payload json.RawMessage `json:"payload,omitempty"`
			Error   *ErrorShape     `json:"error,omitempty"`
		}{f.Type, f.ID, f.OK, f.Payload, f.Error})
	case TypeEvent:
		return encodeJSON(struct {
			Type    string          `json:"type"`
			Event   string          `json:"event"`
			Payload json.RawMessage `json:"payload,omitempty"`
			Seq     *int64          `json:"seq,omitempty"`
		}{f.Type, f.Event, f.Payload, f.Seq})
	case TypeCancel:
		return encodeJSON(struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		}{f.Type, f.ID})
	}
	return nil, fmt.Errorf("frame: cannot write a frame of type %q", f.Type)
}

// encodeJSON is json.Marshal without HTML escaping.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// present returns a raw field, or nil when it is absent or JSON null (what
// OpenClaw's optional fields allow).
func present(raw json.RawMessage) json.RawMessage {
	if raw == nil || isNull(raw) {
		return nil
	}
	return raw
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func nonEmptyString(raw json.RawMessage, name string) (string, error) {
	if raw == nil {
		return "", fmt.Errorf("%q missing", name)
	}
	var s string
	if isNull(raw) || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%q is not a string", name)
	}
	if s == "" {
		return "", fmt.Errorf("%q is empty", name)
	}
	return s, nil
}

// nonNegativeInt accepts a JSON integer (no fraction, no exponent) that
// fits an int64 and is not negative.
func nonNegativeInt(raw json.RawMessage, name string) (int64, error) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative integer", name)
	}
	return n, nil
}

// Interface guards
var _ json.Marshaler = Frame{}
