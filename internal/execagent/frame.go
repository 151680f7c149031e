package execagent

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol version both sides announce in Hello.
const Version = 1

// Frame sizes.
const (
	// HeaderSize is the type and stream ID that follow the length.
	HeaderSize = 5
	// MaxPayload bounds the payload of a frame from the agent (64 KiB):
	// the sidecar's reader refuses a longer length before reading it.
	MaxPayload = 64 << 10
	// MaxStartPayload bounds the payload of a frame from the sidecar
	// (1 MiB), which may carry a large argv and environment.
	MaxStartPayload = 1 << 20
	// InitialWindow is how many output bytes (stdout and stderr together)
	// a stream may send before the sidecar grants more with Credit.
	InitialWindow = 256 << 10
)

// Frame types. The first group goes from the sidecar to the agent, the
// second from the agent to the sidecar; Hello goes both ways.
const (
	THello  byte = 1 // JSON Hello
	TStart  byte = 2 // JSON Start
	TCredit byte = 3 // 4-byte big-endian count of output bytes granted
	TKill   byte = 4 // no payload: SIGKILL to the command's process group
	TPing   byte = 5 // no payload

	TStdout byte = 16 // raw output bytes, at least one
	TStderr byte = 17 // raw output bytes, at least one
	TExit   byte = 18 // JSON Exit; the stream's last frame
	TPong   byte = 19 // no payload
)

// Frame is one decoded frame. Payload is the frame's own buffer.
type Frame struct {
	Type    byte
	Stream  uint32
	Payload []byte
}

// ErrFrame wraps every refusal of malformed input.
var ErrFrame = errors.New("bad frame")

// Reader decodes frames from a byte stream.
type Reader struct {
	r   *bufio.Reader
	max uint32
	hdr [4 + HeaderSize]byte
}

// NewReader reads frames of at most maxPayload payload bytes from r
// (MaxPayload or MaxStartPayload).
func NewReader(r io.Reader, maxPayload int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: uint32(maxPayload)}
}

// Read returns the next frame. io.EOF means the stream ended between
// frames; a stream that ends inside a frame is io.ErrUnexpectedEOF. A length
// out of range is ErrFrame, refused before any payload is read.
func (fr *Reader) Read() (Frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return Frame{}, err // io.EOF only when no byte of the frame came
	}
	n := binary.BigEndian.Uint32(fr.hdr[:4])
	if n < HeaderSize || n-HeaderSize > fr.max {
		return Frame{}, fmt.Errorf("%w: length %d out of range [%d, %d]", ErrFrame, n, HeaderSize, HeaderSize+fr.max)
	}
	f := Frame{Type: fr.hdr[4], Stream: binary.BigEndian.Uint32(fr.hdr[5:9])}
	if n > HeaderSize {
		f.Payload = make([]byte, n-HeaderSize)
		if _, err := io.ReadFull(fr.r, f.Payload); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, fmt.Errorf("frame payload: %w", err)
		}
	}
	return f, nil
}

// Append appends the encoding of a frame to b. It panics on a payload over
// MaxStartPayload: callers chunk their data.
func Append(b []byte, typ byte, stream uint32, payload []byte) []byte {
	if len(payload) > MaxStartPayload {
		panic(fmt.Sprintf("execagent: payload of %d bytes exceeds MaxStartPayload", len(payload)))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(HeaderSize+len(payload)))
	b = append(b, typ)
	b = binary.BigEndian.AppendUint32(b, stream)
	return append(b, payload...)
}
