package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// authKeyEnv holds the auth key every node must present.
const authKeyEnv = "TAILNET_LAB_AUTH_KEY"

func main() {
	err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2) // the usage is printed
	default:
		fmt.Fprintln(os.Stderr, "tailnet-lab:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tailnet-lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "IPv4 address to listen on and to name in the DERP map (default: the first non-loopback IPv4 address of this host)")
	var cfg config
	fs.IntVar(&cfg.controlPort, "control-port", 8080, "control server port (HTTP)")
	fs.IntVar(&cfg.derpPort, "derp-port", 8443, "DERP relay port (HTTPS, self-signed)")
	fs.IntVar(&cfg.stunPort, "stun-port", 3478, "STUN port (UDP)")
	tags := fs.String("tags", "", "comma-separated tags nodes may advertise, e.g. tag:gate,tag:node")
	verbose := fs.Bool("verbose", false, "log the control server's and DERP's messages to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.authKey = getenv(authKeyEnv); cfg.authKey == "" {
		return fmt.Errorf("$%s is empty: set the key nodes must present (a lab without one admits anyone on its network)", authKeyEnv)
	}
	for t := range strings.SplitSeq(*tags, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !strings.HasPrefix(t, "tag:") || len(t) == len("tag:") {
			return fmt.Errorf("--tags: %q: want tag:<name>", t)
		}
		cfg.tags = append(cfg.tags, t)
	}
	var err error
	if cfg.addr, err = pickAddr(*addr); err != nil {
		return err
	}
	if *verbose {
		cfg.logf = log.New(stderr, "", log.LstdFlags|log.Lmicroseconds).Printf
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := start(cfg)
	if err != nil {
		return err
	}
	defer l.close()
	fmt.Fprintf(stdout, "tailnet-lab: control %s derp %s stun %s magicdns %s\n", l.controlURL, l.derpAddr, l.stunAddr, magicDNSDomain)
	select {
	case <-ctx.Done():
		return nil
	case err := <-l.failed:
		return err
	}
}

// pickAddr returns flagValue parsed, or this host's first non-loopback IPv4
// address when it is empty.
func pickAddr(flagValue string) (netip.Addr, error) {
	if flagValue != "" {
		a, err := netip.ParseAddr(flagValue)
		if err != nil || !a.Is4() {
			return netip.Addr{}, fmt.Errorf("--addr %q: want an IPv4 address", flagValue)
		}
		return a, nil
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("listing interfaces for --addr: %w", err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				return p.Addr(), nil
			}
		}
	}
	return netip.Addr{}, errors.New("no non-loopback IPv4 address on this host: give --addr")
}
