package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/clawguard/clawguard/caddymodule"
	"github.com/clawguard/clawguard/pairing"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/vault"
)

// defaultGateway is where the gate listens in the standard setup.
const defaultGateway = "http://127.0.0.1:18789"

// defaultAdmin is the gate's admin listener (admin UI and API) in the
// standard setup.
const defaultAdmin = "http://" + caddymodule.DefaultAdminListen

// adminTokenEnv is read for an admin token when no --token-* flag is given.
const adminTokenEnv = "CLAWGUARD_ADMIN_TOKEN"

// adminFlags are the flags of commands that talk to the gate's admin API.
type adminFlags struct {
	admin, tokenEnv, tokenVault, stateDir *string
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	admin := fs.String("admin-url", defaultAdmin, "the gate's admin listener (its admin_listen)")
	fs.StringVar(admin, "gateway", defaultAdmin, "former name of --admin-url")
	return adminFlags{
		admin:      admin,
		tokenEnv:   fs.String("token-env", "", "read an admin bearer token from this environment variable (default $"+adminTokenEnv+" if set; without a token the CLI is a local client)"),
		tokenVault: fs.String("token-vault", "", "read an admin bearer token from this vault entry"),
		stateDir:   stateDirFlag(fs),
	}
}

// adminClient calls the gate's admin API (/.clawguard/api/) as a local
// client, or with an admin token read from the environment or the vault —
// never from the command line.
type adminClient struct {
	base   string
	token  string
	client *http.Client
	csrf   string
}

func (f adminFlags) client() (*adminClient, error) {
	base := strings.TrimRight(*f.admin, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, usageError{fmt.Sprintf("--admin-url %q: want an http:// or https:// URL", *f.admin)}
	}
	a := &adminClient{base: base, client: &http.Client{Timeout: 30 * time.Second}}
	switch {
	case *f.tokenEnv != "" && *f.tokenVault != "":
		return nil, usageError{"give --token-env or --token-vault, not both"}
	case *f.tokenVault != "":
		v, err := vault.Open(statedir.Resolve(*f.stateDir))
		if err != nil {
			return nil, err
		}
		tok, err := v.Get(*f.tokenVault)
		if err != nil {
			return nil, err
		}
		a.token = strings.TrimSpace(string(tok))
	case *f.tokenEnv != "":
		a.token = os.Getenv(*f.tokenEnv)
		if a.token == "" {
			return nil, fmt.Errorf("environment variable %s is empty or unset", *f.tokenEnv)
		}
	default:
		a.token = os.Getenv(adminTokenEnv)
	}
	return a, nil
}

// apiError is the gate's refusal of an admin API call.
type apiError struct {
	refusal
	method, url string
}

func (e *apiError) Error() string {
	hint := ""
	switch e.status {
	case http.StatusUnauthorized:
		hint = " (run this on the gateway host, or give an admin token with --token-env/--token-vault)"
	case http.StatusForbidden:
		if e.code == "forbidden" {
			hint = " (the gate's admins option must list this identity)"
		}
	case http.StatusNotFound:
		if e.code == "not_found" && !strings.Contains(e.url, "/devices/") && !strings.Contains(e.url, "/pairing/") {
			hint = " (the admin API is served only on the gate's admin listener, " + defaultAdmin + " unless its admin_listen says otherwise, never on the gateway's site; see --admin-url)"
		}
	}
	return fmt.Sprintf("%s %s: %d %s: %s%s", e.method, e.url, e.status, e.code, e.msg, hint)
}

func (a *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	if method == "POST" && a.csrf == "" {
		var s pairing.Session
		if err := a.do(ctx, "GET", "session", nil, &s); err != nil {
			return err
		}
		a.csrf = s.CSRFToken
	}
	url := a.base + "/.clawguard/api/" + path
	err := callJSON(ctx, a.client, method, url, body, out, func(req *http.Request) error {
		if a.csrf != "" {
			req.Header.Set(pairing.CSRFHeader, a.csrf)
		}
		if a.token != "" {
			req.Header.Set("Authorization", "Bearer "+a.token)
		}
		return nil
	})
	var r *refusal
	var u *unreachableError
	switch {
	case errors.As(err, &u):
		return fmt.Errorf("cannot reach the admin listener at %s (is Caddy with the clawguard gate running? see --admin-url and the gate's admin_listen): %w", a.base, u.err)
	case errors.As(err, &r):
		return &apiError{refusal: *r, method: method, url: url}
	}
	return err
}
