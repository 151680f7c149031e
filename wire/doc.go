// Package wire holds what the gate, the sidecar and the CLI must agree on
// byte for byte: the X-Clawguard-* headers, the sidecar's API paths, the
// {"error","code"} body of every refusal, and the names of the files in
// the state directory. Each is written once here so that a rename shows
// in every program at once.
//
// wire is a leaf: it imports only the standard library, and every other
// package may import it.
package wire
