package main

import (
	"context"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules plus ours: the same set cmd/caddy and an
	// xcaddy build contain, so `clawguard caddy` is a complete Caddy.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/clawguard/clawguard"
)

func init() {
	register(&command{
		name:    "caddy",
		summary: "run the embedded Caddy (with clawguard's modules): clawguard caddy run|adapt|fmt|list-modules …",
		run: func(ctx context.Context, c *cli, args []string) error {
			// caddycmd.Main reads os.Args and exits the process itself.
			os.Args = append([]string{"caddy"}, args...)
			caddycmd.Main()
			return nil
		},
	})
}
