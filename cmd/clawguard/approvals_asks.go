package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os/user"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/clawguard/clawguard/approvals"
	"github.com/clawguard/clawguard/httpsig"
	"github.com/clawguard/clawguard/sidecar"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/vault"
	"github.com/clawguard/clawguard/wire"
)

// The verbs that answer asks talk to the sidecar's approvals API over its
// unix socket, as the identity unix:<login of this user> with the admin
// role: the socket's permissions and the sidecar's allowed_uids already
// decide that this user may administer it. When the sidecar requires the
// gate's signed identity (identity_keys), the request is signed with that
// key from the vault.

// askFlags are the flags of list, allow-once, allow-always and deny.
type askFlags struct {
	stateDir, socket, config *string
	asJSON                   *bool
}

func addAskFlags(fs *flag.FlagSet) askFlags {
	return askFlags{
		stateDir: stateDirFlag(fs),
		socket:   fs.String("socket", "", "the sidecar's socket (default <state_dir>/"+wire.FileSidecarSocket+")"),
		config:   fs.String("config", "", "the sidecar's config, for its identity_keys (default <state_dir>/"+wire.FileSidecarConfig+")"),
		asJSON:   fs.Bool("json", false, "print the answer as JSON"),
	}
}

// sidecarClient calls the sidecar's approvals API.
type sidecarClient struct {
	socket string
	who    string
	keyID  string
	key    []byte
	http   *http.Client
}

func (f askFlags) client() (*sidecarClient, error) {
	dir, err := filepath.Abs(statedir.Resolve(*f.stateDir))
	if err != nil {
		return nil, err
	}
	c := &sidecarClient{socket: *f.socket}
	if c.socket == "" {
		c.socket = filepath.Join(dir, wire.FileSidecarSocket)
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("who am I: %w", err)
	}
	c.who = "unix:" + u.Username
	cfgPath := *f.config
	if cfgPath == "" {
		cfgPath = filepath.Join(dir, wire.FileSidecarConfig)
	}
	cfg, err := sidecar.LoadConfig(cfgPath, dir)
	if err != nil {
		return nil, err
	}
	if len(cfg.IdentityKeys) > 0 {
		ids := make([]string, 0, len(cfg.IdentityKeys))
		for id := range cfg.IdentityKeys {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		c.keyID = ids[0]
		v, err := vault.Open(dir)
		if err != nil {
			return nil, fmt.Errorf("the sidecar requires signed identities (identity_keys): %w", err)
		}
		raw, err := v.Get(cfg.IdentityKeys[c.keyID])
		if err != nil {
			return nil, fmt.Errorf("identity_keys[%q]: %w", c.keyID, err)
		}
		if c.key, err = httpsig.ParseKey(raw); err != nil {
			return nil, fmt.Errorf("identity_keys[%q]: %w", c.keyID, err)
		}
	}
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", c.socket)
		},
	}}
	return c, nil
}

// do calls the sidecar's API as c.who with the admin role, signed when the
// sidecar requires signed identities. Refusals are *refusal.
func (c *sidecarClient) do(ctx context.Context, method, path string, body, out any) error {
	err := callJSON(ctx, c.http, method, "http://sidecar"+path, body, out, func(req *http.Request) error {
		req.Header.Set(wire.HeaderIdentity, c.who)
		req.Header.Set(wire.HeaderMethod, "unix")
		req.Header.Set(wire.HeaderRole, wire.RoleAdmin)
		if c.key == nil {
			return nil
		}
		return httpsig.SignIdentity(req, c.keyID, c.key)
	})
	var u *unreachableError
	if errors.As(err, &u) {
		return fmt.Errorf("cannot reach the sidecar at %s (is `clawguard sidecar` running? see --socket): %w", c.socket, u.err)
	}
	return err
}

func approvalsList(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("approvals list", "approvals list [--state pending|decided|all] [--json] [--state-dir DIR] [--socket PATH]")
	f := addAskFlags(fs)
	state := fs.String("state", "pending", "which asks: pending, decided (recently) or all")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	sc, err := f.client()
	if err != nil {
		return err
	}
	var out struct {
		Approvals []approvals.Approval `json:"approvals"`
	}
	if err := sc.do(ctx, "GET", wire.PathApprovals+"?state="+*state, nil, &out); err != nil {
		return err
	}
	if *f.asJSON {
		return c.writeJSON(out)
	}
	if len(out.Approvals) == 0 {
		fmt.Fprintf(c.stdout, "no %s approval requests\n", *state)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tAGENT\tFROM\tTARGET\tEXPIRES\tCOMMAND")
	now := time.Now()
	for _, a := range out.Approvals {
		expires := "-"
		if a.State == approvals.StatePending {
			expires = a.Expires.Sub(now).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.State, a.Agent, a.Identity, a.Target, expires, a.Command)
	}
	return tw.Flush()
}

// approvalsAnswer is allow-once, allow-always and deny.
func approvalsAnswer(ctx context.Context, c *cli, choice approvals.Choice, args []string) error {
	usage := "approvals " + string(choice) + " ID [--json] [--state-dir DIR] [--socket PATH]"
	if choice == approvals.AllowAlways {
		usage = "approvals allow-always ID [--args REGEX] [--json] [--state-dir DIR] [--socket PATH]"
	}
	fs := c.flagSet("approvals "+string(choice), usage)
	f := addAskFlags(fs)
	var pattern *string
	if choice == approvals.AllowAlways {
		pattern = fs.String("args", "", "args pattern (RE2) to record instead of exactly these arguments; it must match them, and for shells and interpreters it must not admit any code")
	}
	// The ID may come before or after the flags.
	if err := fs.Parse(args); err != nil {
		return err
	}
	id := fs.Arg(0)
	if err := fs.Parse(fs.Args()[min(1, fs.NArg()):]); err != nil {
		return err
	}
	switch {
	case id == "":
		return usageError{"missing the approval ID (see clawguard approvals list)"}
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	body := map[string]string{"decision": string(choice)}
	if pattern != nil && *pattern != "" {
		body["args"] = *pattern
	}
	sc, err := f.client()
	if err != nil {
		return err
	}
	var a approvals.Approval
	if err := sc.do(ctx, "POST", wire.PathApprovals+"/"+id, body, &a); err != nil {
		var se *refusal
		if errors.As(err, &se) && se.code == "allow_always_refused" {
			return fmt.Errorf("%s; it is still pending: allow once or deny it", se.msg)
		}
		return err
	}
	if *f.asJSON {
		return c.writeJSON(a)
	}
	fmt.Fprintf(c.stdout, "%s %s: %s\n  %s\n", a.ID, a.State, a.Command, a.Result)
	return nil
}
