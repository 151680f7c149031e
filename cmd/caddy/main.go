// Command caddy is Caddy with its standard modules plus clawguard's: the
// binary `xcaddy build --with github.com/clawguard/clawguard` produces.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/clawguard/clawguard"
)

func main() { caddycmd.Main() }
