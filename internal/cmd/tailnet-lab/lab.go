package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/logger"
)

// magicDNSDomain is the lab tailnet's MagicDNS suffix.
const magicDNSDomain = "lab.ts.net"

// config is what the flags and environment set.
type config struct {
	addr                            netip.Addr
	controlPort, derpPort, stunPort int
	authKey                         string
	tags                            []string
	logf                            logger.Logf // nil: discard
}

// lab is a running control server, DERP relay and STUN server.
type lab struct {
	controlURL         string
	derpAddr, stunAddr netip.AddrPort
	control            *http.Server
	relay              *relay
	failed             chan error // a server that stopped on its own
}

// start brings up the relay first (the control server hands out its
// address), then the control server.
func start(cfg config) (*lab, error) {
	logf := cfg.logf
	if logf == nil {
		logf = logger.Discard
	}
	l := &lab{failed: make(chan error, 3)}
	var err error
	if l.relay, err = startRelay(cfg.addr, cfg.derpPort, cfg.stunPort, logf, l.failed); err != nil {
		return nil, err
	}
	l.derpAddr, l.stunAddr = l.relay.derpAddr, l.relay.stunAddr
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(cfg.addr, uint16(cfg.controlPort)).String())
	if err != nil {
		l.relay.close()
		return nil, fmt.Errorf("control server: %w", err)
	}
	l.controlURL = "http://" + ln.Addr().String()
	ctl := &testcontrol.Server{
		DERPMap:         l.relay.derpMap(),
		DNSConfig:       &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain:  magicDNSDomain,
		RequireAuthKey:  cfg.authKey,
		ExplicitBaseURL: l.controlURL,
		Logf:            logf,
	}
	if len(cfg.tags) > 0 {
		// Non-nil TagOwners makes testcontrol give nodes the tags they ask
		// for; each listed tag may be claimed by an untagged node.
		ctl.TagOwners = map[string][]string{}
		for _, t := range cfg.tags {
			ctl.TagOwners[t] = nil
		}
	}
	l.control = &http.Server{Handler: ctl, ReadHeaderTimeout: 10 * time.Second, ErrorLog: logger.StdLogger(logf)}
	go func() {
		if err := l.control.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			l.failed <- fmt.Errorf("control server: %w", err)
		}
	}()
	return l, nil
}

// close stops the servers and drops their connections.
func (l *lab) close() {
	l.control.Close()
	l.relay.close()
}
