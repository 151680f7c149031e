// Package clawguard registers clawguard's Caddy modules. It is the package
// `xcaddy build --with github.com/clawguard/clawguard` imports: the gate
// (http.handlers.clawguard, directive `clawguard`) and the clawguard app.
package clawguard

import (
	_ "github.com/clawguard/clawguard/caddymodule"
)
