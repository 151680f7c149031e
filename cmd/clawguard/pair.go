package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/clawguard/clawguard/pairclient"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/vault"
)

func init() {
	register(&command{
		name:    "pair",
		summary: "pair this machine with a gate as a device: pair --gateway URL --name NAME | pair status",
		run:     runPair,
	})
}

const pairHelp = `Usage: clawguard pair --gateway URL --name NAME [--timeout D] [--json] [--state-dir DIR]
       clawguard pair status [--check] [--json] [--state-dir DIR]

Pairs this machine with a clawguard gate as a device. The device identity
is an Ed25519 key made on first use and kept in the vault (entry
` + keyEntry + `); the device token the gate issues is stored in the vault
too (entry ` + tokenEntry + `). Without a usable vault (no machine id and no
$CLAWGUARD_VAULT_PASSPHRASE) both go to 0600 files in the state directory
until the vault works, with a warning.

On the gateway host itself the request is approved at once (unless the gate
has auto_approve_local off); elsewhere it waits, with a countdown, until a
person approves it with 'clawguard devices approve REQUEST_ID' or in the UI
at <gateway>/.clawguard/ui/.

pair status shows the stored pairing; --check also asks the gate whether
the token is still accepted.
`

// Vault entries and fallback files of the device side.
const (
	keyEntry   = "pair_device_key"
	tokenEntry = "pair_device_token"
	statusFile = "pairing-client.json"
)

// pairStatus is <state_dir>/pairing-client.json: what pair did, no secrets.
type pairStatus struct {
	Gateway   string    `json:"gateway"`
	DeviceID  string    `json:"device_id"`
	Name      string    `json:"name"`
	PairedAt  time.Time `json:"paired_at"`
	RequestID string    `json:"request_id,omitempty"`
	Secrets   string    `json:"secrets"` // "vault" or the fallback directory
	Token     *bool     `json:"token_accepted,omitempty"`
}

func runPair(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 && args[0] == "status" {
		return pairStatusCmd(ctx, c, args[1:])
	}
	fs := c.flagSet("pair", "pair --gateway URL --name NAME [flags]")
	gateway := fs.String("gateway", defaultGateway, "the gate's base URL")
	host, _ := os.Hostname()
	name := fs.String("name", host, "this device's name as people will see it")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up waiting for approval after this long (the countdown shows the earlier of this and the request's expiry)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	dir := stateDirFlag(fs)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		io.WriteString(c.stdout, pairHelp)
		fmt.Fprintln(c.stdout, "\nFlags of pair:")
		fs.SetOutput(c.stdout)
		fs.PrintDefaults()
		fmt.Fprintln(c.stdout, "\nFlags of pair status: --check, --json, --state-dir DIR")
		return flag.ErrHelp
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q; see clawguard pair --help", pos[0])}
	}
	if err := pairing.ValidName(*name); err != nil {
		return usageError{"--name: " + err.Error()}
	}
	sec, err := openDeviceSecrets(statedir.Resolve(*dir), c)
	if err != nil {
		return err
	}
	key, err := sec.key()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cd := newCountdown(c, *gateway)
	cd.deadline, _ = ctx.Deadline()
	defer cd.stop()
	res, err := pairclient.Pair(ctx, pairclient.Options{Gateway: *gateway, Name: *name, Key: key, OnPending: cd.start})
	cd.stop()
	switch {
	case errors.Is(err, pairclient.ErrRejected):
		return errors.New("the pairing request was rejected")
	case errors.Is(err, pairclient.ErrExpired):
		return errors.New("the pairing request expired before anyone approved it; run clawguard pair again")
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("gave up after %s waiting for approval (--timeout)", *timeout)
	case err != nil:
		return err
	}
	if err := sec.set(tokenEntry, []byte(res.Token)); err != nil {
		return fmt.Errorf("paired, but storing the device token failed (pair again): %w", err)
	}
	st := pairStatus{Gateway: strings.TrimRight(*gateway, "/"), DeviceID: res.DeviceID, Name: *name, PairedAt: time.Now().UTC(),
		RequestID: res.RequestID, Secrets: sec.where()}
	if err := writeJSONFile(filepath.Join(sec.dir, statusFile), st); err != nil {
		return err
	}
	if *asJSON {
		return c.writeJSON(st)
	}
	fmt.Fprintf(c.stdout, "paired with %s as device %s (%q); token stored in %s\n", st.Gateway, res.DeviceID, *name, st.Secrets)
	return nil
}

func pairStatusCmd(ctx context.Context, c *cli, args []string) error {
	flags := c.flagSet("pair status", "pair status [--check] [--json] [--state-dir DIR]")
	check := flags.Bool("check", false, "ask the gate whether the stored token is still accepted")
	asJSON := flags.Bool("json", false, "print JSON")
	dir := stateDirFlag(flags)
	if _, err := parseInterspersed(flags, args); err != nil {
		return err
	}
	d := statedir.Resolve(*dir)
	var st pairStatus
	if err := readJSONFile(filepath.Join(d, statusFile), &st); errors.Is(err, fs.ErrNotExist) {
		if *asJSON {
			return c.writeJSON(struct {
				Paired bool `json:"paired"`
			}{false})
		}
		fmt.Fprintf(c.stdout, "not paired (no %s in %s); run clawguard pair --gateway URL --name NAME\n", statusFile, d)
		return exitCode(1)
	} else if err != nil {
		return err
	}
	if *check {
		sec, err := openDeviceSecrets(d, c)
		if err != nil {
			return err
		}
		tok, err := sec.get(tokenEntry)
		if err != nil {
			return fmt.Errorf("reading the device token: %w", err)
		}
		ok, err := tokenAccepted(ctx, st.Gateway, string(tok))
		if err != nil {
			return err
		}
		st.Token = &ok
	}
	if *asJSON {
		return c.writeJSON(st)
	}
	fmt.Fprintf(c.stdout, "paired with %s as device %s (%q) at %s; secrets in %s\n", st.Gateway, st.DeviceID, st.Name, st.PairedAt.Local().Format(time.DateTime), st.Secrets)
	if st.Token != nil {
		if *st.Token {
			fmt.Fprintln(c.stdout, "the gate accepts the device token")
		} else {
			fmt.Fprintln(c.stdout, "the gate REFUSES the device token (revoked?); pair again")
			return exitCode(1)
		}
	}
	return nil
}

// tokenAccepted sends HEAD / with the token: any answer but 401 means the
// gate let it through (the upstream's answer does not matter).
func tokenAccepted(ctx context.Context, gateway, token string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "HEAD", gateway+"/", nil)
	if err != nil {
		return false, err
	}
	resp, err := pairclient.HTTPClient(token, nil).Do(req)
	if err != nil {
		return false, fmt.Errorf("cannot reach the gate at %s: %w", gateway, err)
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusUnauthorized, nil
}

// countdown shows the time left for approval on stderr: updated in place
// every second on a terminal, a line every 30 s otherwise.
type countdown struct {
	c        *cli
	gateway  string
	deadline time.Time // when pair gives up (--timeout); zero: never
	done     chan struct{}
	stopped  chan struct{}
}

func newCountdown(c *cli, gateway string) *countdown {
	return &countdown{c: c, gateway: strings.TrimRight(gateway, "/"), done: make(chan struct{})}
}

func (cd *countdown) start(requestID string, expires time.Time) {
	w := cd.c.stderr
	fmt.Fprintf(w, "Waiting for approval of pairing request %s.\nApprove it on the gateway host with:\n    clawguard devices approve %s\nor in the admin UI there (%s/.clawguard/ui/ unless the gate's admin_listen says otherwise)\n", requestID, requestID, defaultAdmin)
	// The countdown ends when waiting does: at the request's expiry, or
	// earlier at --timeout.
	end, why := expires, "the request expires"
	if !cd.deadline.IsZero() && cd.deadline.Before(expires) {
		end, why = cd.deadline, "--timeout"
	}
	fmt.Fprintf(w, "Waiting until %s (%s, in %s).\n", end.Local().Format(time.TimeOnly), why, time.Until(end).Round(time.Second))
	f, ok := w.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	cd.stopped = make(chan struct{})
	go func() {
		defer close(cd.stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for n := 0; ; n++ {
			left := time.Until(end).Round(time.Second)
			if left < 0 {
				left = 0
			}
			switch {
			case tty:
				fmt.Fprintf(w, "\r  %d:%02d left to approve ", int(left.Minutes()), int(left.Seconds())%60)
			case n%30 == 0:
				fmt.Fprintf(w, "  %d:%02d left to approve\n", int(left.Minutes()), int(left.Seconds())%60)
			}
			select {
			case <-cd.done:
				if tty {
					fmt.Fprintln(w)
				}
				return
			case <-tick.C:
			}
		}
	}()
}

func (cd *countdown) stop() {
	select {
	case <-cd.done:
	default:
		close(cd.done)
	}
	if cd.stopped != nil {
		<-cd.stopped
	}
}

// deviceSecrets keeps the device key and token in the vault, or in 0600
// files of the state directory while no vault can be opened.
type deviceSecrets struct {
	dir string
	v   *vault.Vault // nil: fallback files
	c   *cli
}

func openDeviceSecrets(dir string, c *cli) (*deviceSecrets, error) {
	if err := statedir.Ensure(dir); err != nil {
		return nil, err
	}
	s := &deviceSecrets{dir: dir, c: c}
	v, err := vault.Open(dir)
	if err != nil {
		fmt.Fprintf(c.stderr, "warning: no vault (%v); keeping the device key and token in 0600 files in %s until there is one\n", err, dir)
		return s, nil
	}
	s.v = v
	return s, nil
}

func (s *deviceSecrets) where() string {
	if s.v != nil {
		return "vault"
	}
	return s.dir
}

func (s *deviceSecrets) file(entry string) string { return filepath.Join(s.dir, entry) }

// get reads an entry: from the vault, moving a fallback file into it first
// if one was left from a time without a vault.
func (s *deviceSecrets) get(entry string) ([]byte, error) {
	if s.v == nil {
		return statedir.ReadFile(s.file(entry))
	}
	if b, err := statedir.ReadFile(s.file(entry)); err == nil {
		if err := s.v.Set(entry, b); err != nil {
			return nil, err
		}
		if err := os.Remove(s.file(entry)); err != nil {
			return nil, err
		}
		fmt.Fprintf(s.c.stderr, "moved %s into the vault\n", s.file(entry))
	}
	b, err := s.v.Get(entry)
	if errors.Is(err, vault.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", entry, fs.ErrNotExist)
	}
	return b, err
}

func (s *deviceSecrets) set(entry string, value []byte) error {
	if s.v == nil {
		return statedir.WriteFile(s.file(entry), value)
	}
	return s.v.Set(entry, value)
}

// key returns the device key, making one on first use.
func (s *deviceSecrets) key() (ed25519.PrivateKey, error) {
	seed, err := s.get(keyEntry)
	switch {
	case err == nil:
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("device key %s: %d bytes, want %d", keyEntry, len(seed), ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	key, err := pairclient.GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := s.set(keyEntry, key.Seed()); err != nil {
		return nil, fmt.Errorf("storing the new device key: %w", err)
	}
	return key, nil
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return statedir.WriteFile(path, append(b, '\n'))
}

func readJSONFile(path string, v any) error {
	b, err := statedir.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
