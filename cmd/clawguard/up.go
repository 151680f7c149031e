package main

import (
	"bufio"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/coder/websocket"

	"github.com/clawguard/clawguard/caddymodule"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
)

func init() {
	register(&command{
		name:    "up",
		summary: "run the whole stack on safe defaults: the sidecar, and Caddy with the gate on loopback in front of a gateway",
		run:     runUp,
	})
}

//go:embed up.Caddyfile.tmpl
var upCaddyfile string

// gatewayTokenEntry is the vault entry holding the token `up` generates.
const gatewayTokenEntry = "gateway_token"

type upOptions struct {
	listen, upstream, admin, adminListen, sidecarMetrics, config, caddy, stateDir string
}

func runUp(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("up", "up [--listen 127.0.0.1:18789] [--admin-listen 127.0.0.1:18788] [--upstream URL] [--state-dir DIR] [--config Caddyfile] [--caddy PATH]")
	var o upOptions
	fs.StringVar(&o.listen, "listen", "127.0.0.1:18789", "loopback address the gate listens on")
	fs.StringVar(&o.upstream, "upstream", "", "the gateway to protect, e.g. http://127.0.0.1:18790 (default: a built-in demo WebSocket echo)")
	fs.StringVar(&o.admin, "admin", "localhost:2019", "Caddy's admin endpoint (loopback; serves the gate's /metrics)")
	fs.StringVar(&o.adminListen, "admin-listen", caddymodule.DefaultAdminListen, "loopback address of the gate's admin UI and API (an origin the gateway never serves)")
	fs.StringVar(&o.sidecarMetrics, "sidecar-metrics", "127.0.0.1:9465", "loopback address where Caddy serves the sidecar's /metrics")
	fs.StringVar(&o.config, "config", "", "run this Caddyfile instead of the generated one")
	fs.StringVar(&o.caddy, "caddy", "", "a caddy binary built with clawguard's modules (default: this binary's embedded Caddy)")
	sd := stateDirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
	host, port, err := loopbackListen(o.listen)
	if err != nil {
		return err
	}
	if _, _, err := loopbackListen(o.sidecarMetrics); err != nil {
		return err
	}
	if _, _, err := loopbackListen(o.adminListen); err != nil {
		return err
	}
	if o.config == "" {
		// Checked before anything starts, so a second `up` never shares an
		// address with the first (see checkFree).
		for _, a := range [][2]string{{"--listen", o.listen}, {"--admin-listen", o.adminListen}, {"--sidecar-metrics", o.sidecarMetrics}, {"--admin", o.admin}} {
			if err := checkFree(a[0], a[1]); err != nil {
				return err
			}
		}
	}
	o.stateDir = statedir.Resolve(*sd)
	if err := statedir.Ensure(o.stateDir); err != nil {
		return err
	}

	out := &prefixWriter{w: c.stdout}
	token, fresh, err := ensureGatewayToken(o.stateDir)
	if err != nil {
		return err
	}

	// Before the sidecar starts: it reads sidecar.json once, at start.
	sandboxNote, err := starterSandbox(ctx, o.stateDir)
	if err != nil {
		return err
	}

	if o.upstream == "" {
		addr, stop, err := startDemoUpstream()
		if err != nil {
			return err
		}
		defer stop()
		o.upstream = "http://" + addr
		out.line("up", "no --upstream given: serving the built-in demo WebSocket echo at "+o.upstream)
	}

	config := o.config
	if config == "" {
		if config, err = writeUpCaddyfile(o, host, port); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("up: locating this binary: %w", err)
	}
	caddyArgv := []string{self, "caddy", "run", "--adapter", "caddyfile", "--config", config}
	if o.caddy != "" {
		caddyArgv = []string{o.caddy, "run", "--adapter", "caddyfile", "--config", config}
	}
	sup := &supervisor{out: out, env: append(os.Environ(), statedir.EnvVar+"="+o.stateDir)}
	// The sidecar first, so Caddy's routes to its socket work from the start.
	sup.start(ctx, "sidecar", []string{self, "sidecar", "--state-dir", o.stateDir, "--log-format", "text"})
	socket := filepath.Join(o.stateDir, wire.FileSidecarSocket)
	if err := sup.waitFor(ctx, 30*time.Second, socketAccepts(socket)); err != nil {
		sup.stop()
		return fmt.Errorf("up: the sidecar did not come up: %w", err)
	}
	sup.start(ctx, "caddy", caddyArgv)

	base := "http://" + net.JoinHostPort(host, port)
	caddyUp := []func(context.Context) error{gateAnswers(base)}
	if o.config == "" {
		caddyUp = append(caddyUp, tcpAccepts(o.adminListen), tcpAccepts(o.sidecarMetrics))
	}
	if err := sup.waitFor(ctx, 60*time.Second, caddyUp...); err != nil {
		sup.stop()
		return fmt.Errorf("up: the gate did not come up at %s: %w", base, err)
	}
	out.line("up", "gate:     "+base+"  (loopback only)")
	out.line("up", "ui:       http://"+o.adminListen+"/.clawguard/ui/  (admin UI and API, on their own origin)")
	out.line("up", "sidecar:  "+base+"/sidecar/v1/…  (socket "+socket+")")
	out.line("up", "metrics:  http://"+o.admin+"/metrics (gate), http://"+o.sidecarMetrics+"/metrics (sidecar)")
	out.line("up", "config:   "+config)
	out.line("up", "state:    "+o.stateDir+stateDirNote(o.stateDir))
	cg, hint := selfCommand(self)
	sdArg := ""
	if o.stateDir != statedir.Default() {
		sdArg = " --state-dir " + shellQuote(o.stateDir)
	}
	vaultGet := cg + " vault get" + sdArg + " " + gatewayTokenEntry
	if fresh {
		out.line("up", "token:    "+token+"   <- shown once; later: "+vaultGet)
	} else {
		out.line("up", "token:    in the vault ("+vaultGet+")")
	}
	if hint != "" {
		out.line("up", hint)
	}
	for _, l := range upTryLines(cg, sdArg, base, o.adminListen) {
		out.line("up", "try:      "+l)
	}
	out.line("up", "sandbox:  "+sandboxNote)
	if strings.HasPrefix(sandboxNote, "starter profile") {
		// Not a try: line: it waits until a person answers the ask.
		out.line("up", "exec:     "+firstExec(cg, sdArg, base)+"   <- waits for you: "+cg+" approvals list"+sdArg+", then "+cg+" approvals allow-once"+sdArg+" ID")
	}
	out.line("up", "Ctrl-C stops everything.")

	err = sup.wait(ctx)
	out.line("up", "stopped")
	return err
}

// upTryLines are the commands `up` suggests, each runnable as printed from
// a shell: cg is how to invoke this binary, sdArg the --state-dir flag
// unless the state directory is the default.
func upTryLines(cg, sdArg, base, adminListen string) []string {
	devices := cg + " devices list"
	if adminListen != caddymodule.DefaultAdminListen {
		devices += " --admin-url http://" + adminListen
	}
	return []string{
		"curl -H \"Authorization: Bearer $(" + cg + " vault get" + sdArg + " " + gatewayTokenEntry + ")\" " + base + "/",
		devices,
		cg + " audit" + sdArg,
	}
}

// firstExec is the curl that runs a first command in the starter sandbox
// through the gate.
func firstExec(cg, sdArg, base string) string {
	return "curl -sS -H \"Authorization: Bearer $(" + cg + " vault get" + sdArg + " " + gatewayTokenEntry + ")\" " +
		`-d '{"agent":"main","session":"first","argv":["/bin/echo","hello from a sandbox"]}' ` + base + "/sidecar" + wire.PathExec
}

// stateDirNote says where the state directory came from.
func stateDirNote(dir string) string {
	switch {
	case dir == statedir.Default():
		return "  (the default for this user)"
	case os.Getenv(statedir.EnvVar) == dir:
		return "  (from $" + statedir.EnvVar + ")"
	}
	return "  (--state-dir; other commands need it too)"
}

// selfCommand returns how a shell runs this binary: "clawguard" when that
// is what PATH finds, else its absolute path — except for a `go run` build
// (deleted when `up` ends), where it returns "clawguard" and a hint to
// install it first.
func selfCommand(self string) (cmd, hint string) {
	if p, err := exec.LookPath("clawguard"); err == nil && sameFile(p, self) {
		return "clawguard", ""
	}
	if strings.Contains(self, string(filepath.Separator)+"go-build") {
		return "clawguard", "note:     this is a `go run` build; run `go install ./cmd/...` (and have $(go env GOPATH)/bin on PATH) for the clawguard commands below"
	}
	return shellQuote(self), ""
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:,=@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// loopbackListen splits addr and refuses anything but a loopback host: `up`
// is the safe default; wider exposure goes through a Caddyfile or tailnet.
func loopbackListen(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", usageError{fmt.Sprintf("--listen %q: %v", addr, err)}
	}
	if host == "localhost" {
		return "127.0.0.1", port, nil
	}
	a, perr := netip.ParseAddr(host)
	if perr != nil || !a.IsLoopback() {
		return "", "", usageError{fmt.Sprintf("--listen %q: up binds loopback only (127.0.0.1 or ::1); expose remotely over a tailnet (docs/tailnet.md)", addr)}
	}
	return host, port, nil
}

// ensureGatewayToken returns the gateway token from the vault, generating
// and storing one on first use. fresh reports a new token, which is the only
// time it is shown.
func ensureGatewayToken(stateDir string) (token string, fresh bool, err error) {
	v, err := vault.Open(stateDir)
	if err != nil {
		return "", false, err
	}
	b, err := v.Get(gatewayTokenEntry)
	if err == nil {
		return string(b), false, nil
	}
	if !errors.Is(err, vault.ErrNotFound) {
		return "", false, err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token = "cgt_" + base64.RawURLEncoding.EncodeToString(raw)
	if err := v.Set(gatewayTokenEntry, []byte(token)); err != nil {
		return "", false, err
	}
	return token, true, nil
}

func writeUpCaddyfile(o upOptions, host, port string) (string, error) {
	tmpl := template.Must(template.New("Caddyfile").Parse(upCaddyfile))
	var b strings.Builder
	mhost, mport, _ := net.SplitHostPort(o.sidecarMetrics)
	err := tmpl.Execute(&b, map[string]string{
		"Admin": o.admin, "AdminListen": o.adminListen, "Port": port, "Host": host,
		"StateDir": o.stateDir, "Upstream": o.upstream,
		"Socket": filepath.Join(o.stateDir, wire.FileSidecarSocket), "MetricsHost": mhost, "MetricsPort": mport,
	})
	if err != nil {
		return "", fmt.Errorf("up: rendering Caddyfile: %w", err)
	}
	path := filepath.Join(o.stateDir, "Caddyfile")
	return path, statedir.WriteFile(path, []byte(b.String()))
}

// startDemoUpstream serves a stand-in gateway on loopback: a greeting that
// shows the identity the gate passed on, and a WebSocket echo at /ws.
func startDemoUpstream() (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("up: demo upstream: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{"*"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "clawguard demo upstream: hello %s (method %s)\nWebSocket echo at /ws\n",
			r.Header.Get(wire.HeaderIdentity), r.Header.Get(wire.HeaderMethod))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return l.Addr().String(), func() { srv.Close() }, nil
}

// socketAccepts is a readiness probe: path is a unix socket that accepts
// connections.
func socketAccepts(path string) func(context.Context) error {
	return func(ctx context.Context) error { return dialProbe(ctx, "unix", path) }
}

// tcpAccepts is a readiness probe: something listens on addr.
func tcpAccepts(addr string) func(context.Context) error {
	return func(ctx context.Context) error { return dialProbe(ctx, "tcp", addr) }
}

func dialProbe(ctx context.Context, network, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// gateAnswers is a readiness probe: the gate answers HTTP at base.
func gateAnswers(base string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/", nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
}

// waitFor polls the probes every 100 ms until all succeed. It stops early
// when a child gives up, returning that child's error (with the cause), and
// after timeout, returning the last probe error.
func (s *supervisor) waitFor(ctx context.Context, timeout time.Duration, probes ...func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var err error
		for _, probe := range probes {
			if err = probe(ctx); err != nil {
				break
			}
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		case err := <-s.failed:
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// supervisor runs child processes with prefixed logs, restarts one that dies
// (a few times), and stops all of them together.
type supervisor struct {
	out      *prefixWriter
	env      []string
	mu       sync.Mutex
	procs    map[string]*exec.Cmd
	wg       sync.WaitGroup
	failed   chan error
	stopping bool
}

const maxRestarts = 3

func (s *supervisor) start(ctx context.Context, name string, argv []string) {
	s.mu.Lock()
	if s.procs == nil {
		s.procs = map[string]*exec.Cmd{}
		s.failed = make(chan error, 8)
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for restarts := 0; ; restarts++ {
			err := s.runOnce(name, argv)
			s.mu.Lock()
			stopping := s.stopping
			s.mu.Unlock()
			if stopping || ctx.Err() != nil {
				return
			}
			if restarts == maxRestarts {
				s.failed <- fmt.Errorf("%s keeps exiting (last: %v); giving up", name, err)
				return
			}
			s.out.line("up", fmt.Sprintf("%s exited (%v); restarting in 1s", name, err))
			time.Sleep(time.Second)
		}
	}()
}

func (s *supervisor) runOnce(name string, argv []string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = s.env
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	// Children get their own process group, so the terminal's Ctrl-C reaches
	// only `up`, which then stops them in order; if `up` itself is killed, the
	// kernel sends them SIGTERM (Pdeathsig) so nothing is left running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.mu.Lock()
	s.procs[name] = cmd
	s.mu.Unlock()
	var copiers sync.WaitGroup
	var lastMu sync.Mutex
	var last string // the child's last output line: the cause, when it exits
	for _, r := range []io.Reader{stdout, stderr} {
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				s.out.line(name, sc.Text())
				lastMu.Lock()
				last = sc.Text()
				lastMu.Unlock()
			}
		}()
	}
	copiers.Wait()
	if err := cmd.Wait(); err != nil {
		if last != "" {
			return fmt.Errorf("%w; its last words: %s", err, last)
		}
		return err
	}
	return nil
}

// wait blocks until ctx ends (Ctrl-C) or a child gives up, then stops all.
func (s *supervisor) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-s.failed:
	}
	s.stop()
	return err
}

// stop sends SIGTERM to every child, and SIGKILL to any still running after
// 10 s.
func (s *supervisor) stop() {
	s.mu.Lock()
	s.stopping = true
	for _, p := range s.procs {
		if p.Process != nil {
			p.Process.Signal(syscall.SIGTERM)
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.mu.Lock()
		for _, p := range s.procs {
			if p.Process != nil {
				p.Process.Kill()
			}
		}
		s.mu.Unlock()
		<-done
	}
}

// prefixWriter writes whole lines tagged with their source, from several
// goroutines.
type prefixWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *prefixWriter) line(source, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%s] %s\n", source, text)
}
