// Command caddybin is a minimal program linking Caddy's core, built by the
// audit's tests to have a real binary whose build information names a
// Caddy version (test binaries carry no dependency versions).
package main

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
)

func main() { fmt.Println(caddy.ImportPath) }
