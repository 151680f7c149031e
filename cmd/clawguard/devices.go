package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clawguard/clawguard/caddymodule"
	"github.com/clawguard/clawguard/pairing"
)

func init() {
	register(&command{
		name:    "devices",
		summary: "paired devices and pairing requests: devices list|approve|reject|revoke|rename …",
		run:     runDevices,
	})
}

const devicesHelp = `Usage: clawguard devices <verb> [flags] [args]

Administers device pairing through the gate's admin API (/.clawguard/api/),
which the gate serves only on its admin listener (admin_listen, default
` + caddymodule.DefaultAdminListen + `), never on the gateway's site. The CLI is a local
client of the gate; from elsewhere (the admin listener on a tailnet node),
give a token of an identity listed in the gate's admins option with
--token-env VAR or --token-vault NAME (tokens are never taken from the
command line).

Verbs:
  list                     pending pairing requests and paired devices
  approve REQUEST_ID       approve a pending request; the device collects its token
  reject REQUEST_ID        reject a pending request
  revoke DEVICE_ID         revoke a device: its token stops working within a second
  rename DEVICE_ID NAME    rename a device

REQUEST_ID and DEVICE_ID may be any unique prefix of the id, as the lists
and the UI show it (a pending request also by its device id's prefix); a
prefix that fits several is refused with the candidates listed.

Flags (every verb):
  --admin-url URL          the gate's admin listener (default ` + defaultAdmin + `;
                           --gateway is its former name)
  --json                   print JSON
  --token-env VAR, --token-vault NAME, --state-dir DIR

Examples:
  clawguard devices list
  clawguard devices approve pr_3q2ZbUuUqJ7x6M0aVQYp1w
  clawguard devices approve pr_3q2Z
  clawguard devices revoke 6275eca0
  CLAWGUARD_ADMIN_TOKEN=... clawguard devices list --admin-url http://gate.example.ts.net:18788
`

// deviceVerbs maps each verb to its positional arity.
var deviceVerbs = map[string]int{"list": 0, "approve": 1, "reject": 1, "revoke": 1, "rename": 2}

func runDevices(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		io.WriteString(c.stdout, devicesHelp)
		return flag.ErrHelp
	}
	verb, args, err := subcommand(args, "list", "approve", "reject", "revoke", "rename")
	if err != nil {
		return err
	}
	fs := c.flagSet("devices "+verb, "devices "+verb+" [flags] (see clawguard devices --help)")
	gf := addAdminFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != deviceVerbs[verb] {
		return usageError{fmt.Sprintf("%s takes %d argument(s), got %d; see clawguard devices --help", verb, deviceVerbs[verb], len(pos))}
	}
	a, err := gf.client()
	if err != nil {
		return err
	}
	if verb == "list" {
		return devicesList(ctx, c, a, *asJSON)
	}
	// A device id as the pending list shows it ends in "…".
	prefix := strings.TrimSuffix(pos[0], "…")
	if err := checkID(prefix); err != nil {
		return err
	}
	if verb == "rename" {
		if verr := pairing.ValidName(pos[1]); verr != nil {
			return usageError{"name: " + verr.Error()}
		}
	}
	id, err := resolveID(ctx, a, verb, prefix)
	if err != nil {
		return err
	}
	var d pairing.Decision
	switch verb {
	case "approve", "reject":
		err = a.do(ctx, "POST", "pairing/"+id+"/"+verb, nil, &d)
	case "revoke":
		err = a.do(ctx, "POST", "devices/"+id+"/revoke", nil, &d)
	case "rename":
		err = a.do(ctx, "POST", "devices/"+id+"/rename", pairing.RenameBody{Name: pos[1]}, &d)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return c.writeJSON(d)
	}
	switch verb {
	case "approve":
		fmt.Fprintf(c.stdout, "approved %s: device %s (%q) collects its token on its next poll\n", d.RequestID, d.DeviceID, d.Name)
	case "reject":
		fmt.Fprintf(c.stdout, "rejected %s (device %s, %q)\n", d.RequestID, d.DeviceID, d.Name)
	case "revoke":
		fmt.Fprintf(c.stdout, "revoked device %s (%q): its token no longer works\n", d.DeviceID, d.Name)
	case "rename":
		fmt.Fprintf(c.stdout, "renamed device %s to %q\n", d.DeviceID, d.Name)
	}
	return nil
}

// resolveID turns a unique prefix of an id, as the lists and the UI show
// them, into the full id: for approve and reject a pending request's id or
// its device's id, for revoke and rename a device's id. No match, or more
// than one, is an error naming the candidates.
func resolveID(ctx context.Context, a *adminClient, verb, prefix string) (string, error) {
	if prefix == "" {
		return "", usageError{"empty id; see clawguard devices list"}
	}
	var out deviceListing
	type candidate struct{ id, label string }
	var cands []candidate
	what := "device"
	if verb == "approve" || verb == "reject" {
		what = "pending pairing request"
		if err := a.do(ctx, "GET", "pairing", nil, &out); err != nil {
			return "", err
		}
		for _, r := range out.Requests {
			if strings.HasPrefix(r.ID, prefix) || strings.HasPrefix(r.DeviceID, prefix) {
				cands = append(cands, candidate{r.ID, fmt.Sprintf("%s (%q, device %s)", r.ID, r.Name, shortID(r.DeviceID))})
			}
		}
	} else {
		if err := a.do(ctx, "GET", "devices", nil, &out); err != nil {
			return "", err
		}
		for _, d := range out.Devices {
			if strings.HasPrefix(d.ID, prefix) {
				cands = append(cands, candidate{d.ID, fmt.Sprintf("%s (%q, %s)", d.ID, d.Name, d.Status)})
			}
		}
	}
	switch len(cands) {
	case 1:
		return cands[0].id, nil
	case 0:
		if verb == "approve" || verb == "reject" {
			// Perhaps decided already: let the gate say so (already_decided).
			if strings.HasPrefix(prefix, "pr_") && len(prefix) == len("pr_")+22 {
				return prefix, nil
			}
		}
		return "", fmt.Errorf("no %s id starts with %q (see clawguard devices list)", what, prefix)
	}
	labels := make([]string, len(cands))
	for i, c := range cands {
		labels[i] = "  " + c.label
	}
	return "", fmt.Errorf("%q is the start of %d %s ids; give more of it:\n%s", prefix, len(cands), what, strings.Join(labels, "\n"))
}

// checkID refuses ids that would change the API path (request ids are
// pr_ and base64url, device ids hex).
func checkID(id string) error {
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return usageError{fmt.Sprintf("%q is not a request or device id (see clawguard devices list)", id)}
		}
	}
	return nil
}

// deviceListing is the --json output of devices list.
type deviceListing struct {
	Requests []pairing.Request    `json:"requests"`
	Devices  []pairing.DeviceView `json:"devices"`
}

func devicesList(ctx context.Context, c *cli, a *adminClient, asJSON bool) error {
	var out deviceListing
	if err := a.do(ctx, "GET", "pairing", nil, &out); err != nil {
		return err
	}
	if err := a.do(ctx, "GET", "devices", nil, &out); err != nil {
		return err
	}
	if asJSON {
		return c.writeJSON(out)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	if len(out.Requests) == 0 {
		fmt.Fprintln(tw, "No pairing request is waiting for approval.")
	} else {
		fmt.Fprintln(tw, "PENDING REQUEST\tNAME\tDEVICE\tFROM\tEXPIRES")
		for _, r := range out.Requests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tin %s\n", r.ID, r.Name, shortID(r.DeviceID), r.ClientIP, r.ExpiresAt.Sub(now).Round(time.Second))
		}
	}
	fmt.Fprintln(tw)
	if len(out.Devices) == 0 {
		fmt.Fprintln(tw, "No device is paired.")
	} else {
		fmt.Fprintln(tw, "DEVICE\tNAME\tSTATUS\tLAST SEEN\tLAST ADDRESS\tAPPROVED BY")
		for _, d := range out.Devices {
			seen := "never"
			if d.LastSeen != nil {
				seen = d.LastSeen.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Name, d.Status, seen, d.LastIP, d.ApprovedBy)
		}
	}
	return tw.Flush()
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}
