// Package sfv parses and serializes RFC 8941 Structured Field Values: the
// dictionaries, inner lists, parameters and bare items that HTTP Message
// Signatures (RFC 9421) and Digest Fields (RFC 9530) are written in.
//
// The parser is strict, on purpose, where RFC 8941 is lenient in ways that
// matter for security: a dictionary key or parameter key that appears twice is
// an error (RFC 8941 lets the last one win silently, which would let a second
// "sig1" label hide behind the first). Everything else follows RFC 8941 §4.2
// exactly; RFC 9651 extensions (dates, display strings) are not accepted.
// Errors are *SyntaxError values that name the byte offset in the field value.
//
// It is a leaf: the standard library only.
package sfv
