// Package clawguard registers clawguard's Caddy modules. It is the package
// `xcaddy build --with github.com/clawguard/clawguard` imports: the gate
// (http.handlers.clawguard, directive `clawguard`), the clawguard app, the
// clawguard_signed and clawguard_tailnet reverse_proxy transports, and the
// tailnet app and network (`bind tailnet/<node>`, global option `tailnet`).
//
// It owns nothing else; only programs (cmd/) sit above it. layout_test.go
// here checks the whole module's layering (docs/design.md, "Layers").
package clawguard
