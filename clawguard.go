package clawguard

import (
	_ "github.com/clawguard/clawguard/caddymodule"
	_ "github.com/clawguard/clawguard/caddymodule/tailnet"
)
