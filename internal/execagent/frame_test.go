package execagent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var b []byte
	b = Append(b, TStdout, 7, []byte("hello"))
	b = Append(b, TPong, 0, nil)
	b = Append(b, TStderr, 1<<31, bytes.Repeat([]byte{'x'}, MaxPayload))
	fr := NewReader(bytes.NewReader(b), MaxPayload)
	for _, want := range []Frame{{TStdout, 7, []byte("hello")}, {TPong, 0, nil}, {TStderr, 1 << 31, bytes.Repeat([]byte{'x'}, MaxPayload)}} {
		f, err := fr.Read()
		if err != nil || f.Type != want.Type || f.Stream != want.Stream || !bytes.Equal(f.Payload, want.Payload) {
			t.Fatalf("got %d/%d/%d bytes %v, want %d/%d/%d bytes", f.Type, f.Stream, len(f.Payload), err, want.Type, want.Stream, len(want.Payload))
		}
	}
	if _, err := fr.Read(); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

// TestFrameRefusals: lengths out of range are refused before any payload
// is read or allocated; a frame cut short is not a clean end.
func TestFrameRefusals(t *testing.T) {
	hdr := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	for name, in := range map[string][]byte{
		"too short":  append(hdr(4), 1, 0, 0, 0, 0),
		"too long":   append(hdr(HeaderSize+MaxPayload+1), 16, 0, 0, 0, 1),
		"max uint32": append(hdr(0xffffffff), 16, 0, 0, 0, 1),
	} {
		if _, err := NewReader(bytes.NewReader(in), MaxPayload).Read(); !errors.Is(err, ErrFrame) {
			t.Errorf("%s: %v, want ErrFrame", name, err)
		}
	}
	cut := Append(nil, TStdout, 1, []byte("abcdef"))
	for i := 1; i < len(cut); i++ {
		if _, err := NewReader(bytes.NewReader(cut[:i]), MaxPayload).Read(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: %v, want io.ErrUnexpectedEOF", i, err)
		}
	}
}

// FuzzFrames feeds hostile bytes to the reader the sidecar uses on the
// agent's output and to the payload parsers: no panic, no frame over the
// limit, and what decodes encodes back to the same bytes.
func FuzzFrames(f *testing.F) {
	f.Add(Append(nil, TStdout, 1, []byte("out")))
	e, _ := AppendJSON(nil, TExit, 1, Exit{Code: 137, Signal: 9}, MaxPayload)
	f.Add(e)
	h, _ := AppendJSON(nil, THello, 0, Hello{Version: 1, Nonce: "n", PID: 7}, MaxPayload)
	f.Add(h)
	f.Add([]byte{0, 0, 0, 5, 3, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewReader(bytes.NewReader(in), MaxPayload)
		for {
			fm, err := fr.Read()
			if err != nil {
				return
			}
			if len(fm.Payload) > MaxPayload {
				t.Fatalf("payload of %d bytes", len(fm.Payload))
			}
			if re := Append(nil, fm.Type, fm.Stream, fm.Payload); !bytes.Contains(in, re) {
				t.Fatalf("re-encoding %x is not in the input", re)
			}
			if ex, err := ParseExit(fm.Payload); err == nil && (ex.Code < 0 || ex.Code > 255 || len(ex.Error) > MaxErrorLen) {
				t.Fatalf("accepted exit %+v", ex)
			}
			ParseHello(fm.Payload)
			ParseCredit(fm.Payload)
		}
	})
}
