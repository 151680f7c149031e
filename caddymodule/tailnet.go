package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/clawguard/clawguard/authn"
	"github.com/clawguard/clawguard/internal/secretref"
	cgtailnet "github.com/clawguard/clawguard/tsnet"
)

// parseTailnetIdentity parses
//
//	tailnet_identity {
//	    allow_users <login>...
//	    allow_tags <tag:name>...
//	}
func (g *Gate) parseTailnetIdentity(d *caddyfile.Dispenser) error {
	if g.TailnetIdentity != nil {
		return d.Err("tailnet_identity: given twice")
	}
	if d.NextArg() {
		return d.Errf("tailnet_identity: want a block, got %s", secretref.Quote(d.Val()))
	}
	p := &cgtailnet.Policy{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var list *[]string
		switch opt := d.Val(); opt {
		case "allow_users":
			list = &p.AllowUsers
		case "allow_tags":
			list = &p.AllowTags
		default:
			return d.Errf("unknown tailnet_identity option %s (want allow_users or allow_tags)", secretref.Quote(opt))
		}
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.Errf("tailnet_identity %s: missing value", d.Val())
		}
		*list = append(*list, args...)
	}
	if err := p.Validate(); err != nil {
		return d.Errf("tailnet_identity: %v", err)
	}
	g.TailnetIdentity = p
	return nil
}

// provisionTailnet checks the tailnet policy and, on a server that listens
// on the tailnet, has the server record which connections came over it, so
// that no listener wrapper (proxy_protocol) can pass a tailnet peer off as
// another address.
func (g *Gate) provisionTailnet(ctx caddy.Context) error {
	if p := g.TailnetIdentity; p != nil {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("tailnet_identity: %w", err)
		}
	}
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && listensOnTailnet(srv) {
		srv.RegisterConnContext(cgtailnet.ConnContext)
	}
	return nil
}

func listensOnTailnet(srv *caddyhttp.Server) bool {
	for _, l := range srv.Listen {
		if strings.HasPrefix(l, "tailnet/") {
			return true
		}
	}
	return false
}

// authenticateTailnet decides a request that came over the tailnet without
// a credential. Only tailnet_identity can let it in: such a request is
// never local, whatever its source address looks like.
func (g *Gate) authenticateTailnet(r *http.Request) verdict {
	if g.TailnetIdentity == nil {
		return verdict{outcome: authMissing}
	}
	peer, _, err := cgtailnet.Identify(r)
	if err != nil {
		g.logger.Warn("tailnet peer unknown; refused", zap.String("remote", r.RemoteAddr), zap.Error(err))
		return verdict{outcome: authRefused, method: authn.MethodTailnet, status: http.StatusUnauthorized,
			code: "tailnet_peer_unknown", msg: "the tailnet node could not tell who sent this request"}
	}
	name, ok := g.TailnetIdentity.Allow(peer)
	if !ok {
		if c := g.logger.Check(zap.InfoLevel, "tailnet peer not allowed by tailnet_identity"); c != nil {
			c.Write(zap.String("login", peer.LoginName), zap.Strings("tags", peer.Tags),
				zap.String("node", peer.NodeName), zap.String("via", peer.Via))
		}
		return verdict{outcome: authForbidden, method: authn.MethodTailnet, code: "forbidden", msg: "tailnet user or tag not allowed"}
	}
	return verdict{outcome: authOK, method: authn.MethodTailnet, id: authn.Identity{Method: authn.MethodTailnet, Name: name}}
}
