package httpsig

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/clawguard/clawguard/httpsig/sfv"
)

// AlgHMACSHA256 is the only algorithm this package signs and verifies.
const AlgHMACSHA256 = "hmac-sha256"

// Limits on what a Signature-Input may ask for, so that an unauthenticated
// request cannot make the verifier do unbounded work.
const (
	maxComponents  = 64
	maxParamLength = 256 // nonce, keyid, tag
)

// sigParams is one signature's parsed Signature-Input member: the covered
// components in order and the signature parameters (RFC 9421 §2.3).
type sigParams struct {
	serialized string // the inner list as RFC 8941 serializes it: the "@signature-params" value
	components []string
	created    int64
	hasCreated bool
	expires    int64
	hasExpires bool
	nonce      string
	alg        string
	keyid      string
	tag        string
}

// covers reports whether the component name is covered.
func (p *sigParams) covers(name string) bool { return slices.Contains(p.components, name) }

// parseSigParams checks one Signature-Input member: an inner list of unique,
// parameterless component names with the parameters created, expires
// (integers) and nonce, alg, keyid, tag (strings). Anything else is refused
// rather than ignored.
func parseSigParams(il *sfv.InnerList) (*sigParams, error) {
	if len(il.Items) > maxComponents {
		return nil, fmt.Errorf("covers %d components; at most %d are allowed", len(il.Items), maxComponents)
	}
	serialized, err := sfv.MarshalInnerList(*il)
	if err != nil {
		return nil, fmt.Errorf("serializing signature parameters: %w", err)
	}
	p := &sigParams{serialized: serialized}
	for _, it := range il.Items {
		name, ok := it.Value.(string)
		if !ok {
			return nil, fmt.Errorf("covered component %v is not a string", it.Value)
		}
		if len(it.Params) > 0 {
			return nil, fmt.Errorf("component parameter ;%s on %q is not supported", it.Params[0].Key, name)
		}
		if err := p.addComponent(name); err != nil {
			return nil, err
		}
	}
	for _, prm := range il.Params {
		switch v := prm.Value.(type) {
		case int64:
			err = p.setInt(prm.Key, v)
		case string:
			err = p.setString(prm.Key, v)
		default:
			err = paramError(prm.Key)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// addComponent appends a covered component name: a lowercase field name or
// a derived component, covered once, never "@signature-params".
func (p *sigParams) addComponent(name string) error {
	switch {
	case !validComponentName(name):
		return fmt.Errorf("covered component %q is not a lowercase field name or derived component", name)
	case name == "@signature-params":
		return fmt.Errorf("\"@signature-params\" cannot be a covered component")
	case p.covers(name):
		return fmt.Errorf("component %q is covered twice", name)
	}
	p.components = append(p.components, name)
	return nil
}

// setInt records the integer parameter created or expires.
func (p *sigParams) setInt(key string, n int64) error {
	switch {
	case key != "created" && key != "expires":
		return paramError(key)
	case n < 0:
		return fmt.Errorf("parameter %s must be a non-negative integer", key)
	case key == "created":
		p.created, p.hasCreated = n, true
	default:
		p.expires, p.hasExpires = n, true
	}
	return nil
}

// setString records the string parameter nonce, alg, keyid or tag.
func (p *sigParams) setString(key, s string) error {
	var dst *string
	switch key {
	case "nonce":
		dst = &p.nonce
	case "alg":
		dst = &p.alg
	case "keyid":
		dst = &p.keyid
	case "tag":
		dst = &p.tag
	default:
		return paramError(key)
	}
	if len(s) > maxParamLength {
		return fmt.Errorf("parameter %s is longer than %d bytes", key, maxParamLength)
	}
	*dst = s
	return nil
}

// paramError refuses parameter key with a value of the wrong type, or
// because it is not a signature parameter at all.
func paramError(key string) error {
	switch key {
	case "created", "expires":
		return fmt.Errorf("parameter %s must be a non-negative integer", key)
	case "nonce", "alg", "keyid", "tag":
		return fmt.Errorf("parameter %s must be a string", key)
	}
	return fmt.Errorf("unknown signature parameter %q", key)
}

// fieldValue joins a field's lines with ", " the way RFC 8941 §4.2 combines
// them before parsing.
func fieldValue(h http.Header, name string) (string, bool) {
	v, ok := h[name]
	return strings.Join(v, ", "), ok
}

// selectSignature parses the Signature-Input and Signature field values and
// returns the signature to verify: the one named label, or, when label is
// empty, the only one present. Duplicate labels and an unlabelled choice
// among several are refused as ambiguous. scanSignature reads what clients
// send without a parse tree; whatever it does not decide, errors included,
// selectSFV does.
func selectSignature(input, signature, label string) (string, *sigParams, []byte, error) {
	if got, p, sig, ok := scanSignature(input, signature, label); ok {
		return got, p, sig, nil
	}
	return selectSFV(input, signature, label)
}

// selectSFV is selectSignature on package sfv's parse trees: the reference
// for every input, and the one that explains a refusal (what is wrong, and
// at which byte).
func selectSFV(input, signature, label string) (string, *sigParams, []byte, error) {
	inputs, err := sfv.ParseDictionary(input)
	if err != nil {
		return "", nil, nil, dictError("Signature-Input", err)
	}
	sigs, err := sfv.ParseDictionary(signature)
	if err != nil {
		return "", nil, nil, dictError("Signature", err)
	}
	if len(inputs) == 0 && len(sigs) == 0 {
		return "", nil, nil, refuse(CodeSignatureMissing, "no signature in Signature-Input and Signature")
	}
	if label == "" {
		if len(inputs) > 1 || len(sigs) > 1 {
			return "", nil, nil, refuse(CodeSignatureAmbiguous,
				"expected exactly one signature, found %d in Signature-Input and %d in Signature", len(inputs), len(sigs))
		}
		if len(inputs) == 1 {
			label = inputs[0].Key
		} else {
			label = sigs[0].Key
		}
	}
	in, ok := inputs.Get(label)
	if !ok {
		return "", nil, nil, refuse(CodeSignatureMissing, "Signature-Input has no signature labelled %q", label)
	}
	sg, ok := sigs.Get(label)
	if !ok {
		return "", nil, nil, refuse(CodeSignatureMissing, "Signature has no signature labelled %q", label)
	}
	if in.InnerList == nil {
		return "", nil, nil, refuse(CodeSignatureMalformed, "Signature-Input %q is not an inner list of components", label)
	}
	var sig []byte
	isBytes := false
	if sg.Item != nil && len(sg.Item.Params) == 0 { // Item is nil when the member is an inner list
		sig, isBytes = sg.Item.Value.([]byte)
	}
	if !isBytes {
		return "", nil, nil, refuse(CodeSignatureMalformed, "Signature %q is not a byte sequence without parameters", label)
	}
	p, err := parseSigParams(in.InnerList)
	if err != nil {
		return "", nil, nil, refuseErr(CodeSignatureMalformed, err, "Signature-Input %q", label)
	}
	return label, p, sig, nil
}

// dictError turns a structured-field parse error into a refusal; a duplicate
// label is ambiguity rather than malformation.
func dictError(field string, err error) *Error {
	if errors.Is(err, sfv.ErrDuplicateKey) {
		return refuseErr(CodeSignatureAmbiguous, err, "%s has a duplicate label", field)
	}
	return refuseErr(CodeSignatureMalformed, err, "%s is not a valid structured field", field)
}
