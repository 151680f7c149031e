package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/clawguard/clawguard/openclaw/openclawtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "openclaw-double:", err)
		os.Exit(2)
	}
}

// run serves until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("openclaw-double", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:18789", "the gateway's WebSocket address")
	control := fs.String("control", "127.0.0.1:18790", "the control API's address")
	useTLS := fs.Bool("tls", false, "serve wss with a self-signed certificate")
	tick := fs.Duration("tick", 15*time.Second, "tick interval")
	maxPayload := fs.Int("max-payload", 25<<20, "policy.maxPayload in bytes")
	proxies := fs.String("trusted-proxies", "", "trusted-proxy auth: comma-separated IPs or CIDRs")
	userHeader := fs.String("user-header", "x-forwarded-user", "trusted-proxy: the user header")
	required := fs.String("required-headers", "", "trusted-proxy: comma-separated required headers")
	allowUsers := fs.String("allow-users", "", "trusted-proxy: comma-separated allowed users")
	allowLoopback := fs.Bool("allow-loopback", false, "trusted-proxy: admit a loopback proxy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (secrets come from the environment)", fs.Args())
	}
	ctlToken := getenv("OPENCLAW_DOUBLE_CONTROL_TOKEN")
	if !isLoopback(*control) && ctlToken == "" {
		return fmt.Errorf("-control %s is not loopback: set OPENCLAW_DOUBLE_CONTROL_TOKEN", *control)
	}
	logger := log.New(stderr, "", log.LstdFlags)
	opts := openclawtest.Options{
		Addr: *listen, Token: getenv("OPENCLAW_GATEWAY_TOKEN"), Password: getenv("OPENCLAW_GATEWAY_PASSWORD"),
		TLS: *useTLS, TickInterval: *tick, MaxPayload: *maxPayload, Logf: logger.Printf,
	}
	if *proxies != "" {
		opts.TrustedProxy = &openclawtest.TrustedProxy{Proxies: list(*proxies), UserHeader: *userHeader,
			RequiredHeaders: list(*required), AllowUsers: list(*allowUsers), AllowLoopback: *allowLoopback}
	}
	s, err := openclawtest.New(opts)
	if err != nil {
		return err
	}
	if err := s.Restart(); err != nil {
		return err
	}
	defer s.Stop()
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	hs := &http.Server{Handler: s.Handler(ctlToken), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()

	ready := map[string]string{"gateway": s.URL(), "control": "http://" + ln.Addr().String()}
	if fp := s.Fingerprint(); fp != "" {
		ready["fingerprint"] = fp
	}
	if err := json.NewEncoder(stdout).Encode(ready); err != nil {
		return err
	}
	logger.Printf("openclaw-double: auth %s, serving until SIGINT/SIGTERM", s.Mode())
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return nil
	}
	return context.Cause(ctx)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
