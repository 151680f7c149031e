// Command caddy is Caddy with its standard modules plus clawguard's: the
// binary `xcaddy build --with github.com/clawguard/clawguard` produces.
//
// It imports only the root package, which registers the modules.
package main
