package httpsig

import (
	"bytes"
	"fmt"
	"sync"
)

// appendSignatureBase appends the RFC 9421 §2.5 signature base to dst: one
// line per covered component, `"name": value`, then `"@signature-params": `
// and the serialized inner list, without a trailing newline.
func appendSignatureBase(dst []byte, m *message, p *sigParams) ([]byte, error) {
	for _, name := range p.components {
		// name is a validated token or "@" token: no quoting needed.
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, `": `...)
		start := len(dst)
		var err error
		if dst, err = m.appendComponent(dst, name); err != nil {
			return dst, err
		}
		if bytes.ContainsAny(dst[start:], "\r\n") { // would forge a line of the base
			return dst, fmt.Errorf("component %q contains a line break", name)
		}
		dst = append(dst, '\n')
	}
	dst = append(dst, `"@signature-params": `...)
	return append(dst, p.serialized...), nil
}

// baseBuffers recycles the verifier's signature-base buffers: a base is
// hashed and dropped, every request.
var baseBuffers = sync.Pool{New: func() any { return new(baseBuffer) }}

type baseBuffer struct{ b []byte }

// maxPooledBase is the largest buffer put back: a request covering huge
// header fields should not pin their size in the pool.
const maxPooledBase = 16 << 10

func (bb *baseBuffer) release(b []byte) {
	if cap(b) <= maxPooledBase {
		bb.b = b[:0]
		baseBuffers.Put(bb)
	}
}
