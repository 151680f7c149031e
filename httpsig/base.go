package httpsig

import (
	"fmt"
	"strings"

	"github.com/clawguard/clawguard/httpsig/sfv"
)

// signatureBase builds the RFC 9421 §2.5 signature base: one line per covered
// component, `"name": value`, then `"@signature-params": ` and the
// serialized inner list, without a trailing newline.
func signatureBase(m *message, p *sigParams) (string, error) {
	var b strings.Builder
	b.Grow(512) // a typical base; saves the builder's repeated growth
	for _, name := range p.components {
		v, err := m.component(name)
		if err != nil {
			return "", err
		}
		if strings.ContainsAny(v, "\r\n") { // would forge a line of the base
			return "", fmt.Errorf("component %q contains a line break", name)
		}
		// name is a validated token or "@" token: no quoting needed.
		b.WriteByte('"')
		b.WriteString(name)
		b.WriteString(`": `)
		b.WriteString(v)
		b.WriteByte('\n')
	}
	params, err := sfv.MarshalInnerList(p.list)
	if err != nil {
		return "", fmt.Errorf("serializing signature parameters: %w", err)
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(params)
	return b.String(), nil
}
