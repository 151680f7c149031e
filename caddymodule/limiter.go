package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/clawguard/clawguard/authn"
)

// limiters holds the rate limiters by policy across config loads, so that
// `caddy reload` neither forgets lockouts nor lets an attacker reset them.
var limiters = caddy.NewUsagePool()

// sharedLimiter is a rate limiter with a sweeper that drops stale entries.
type sharedLimiter struct {
	*authn.Limiter
	stop chan struct{}
}

func newSharedLimiter(cfg authn.RateLimit) *sharedLimiter {
	s := &sharedLimiter{Limiter: authn.NewLimiter(cfg), stop: make(chan struct{})}
	go func() {
		t := time.NewTicker(cfg.Window)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				s.Sweep(now)
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

// Destruct stops the sweeper when the last config using the limiter goes.
func (s *sharedLimiter) Destruct() error {
	close(s.stop)
	return nil
}

// Interface guards
var _ caddy.Destructor = (*sharedLimiter)(nil)
