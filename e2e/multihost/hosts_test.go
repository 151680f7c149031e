package multihost

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/clawguard/clawguard/sidecar"
)

// The tailnet's tags: the gateway host's node, the node hosts', the test
// process's client, and a client nobody lets in.
const (
	tagGate     = "tag:clawguard"
	tagNode     = "tag:clawguard-node"
	tagTester   = "tag:tester"
	tagIntruder = "tag:intruder"
)

// The gate's site on the tailnet and its upstream timeouts: how long a
// request for a node host that is gone may take. The OpenClaw gateway (the
// double) listens on the gateway host's loopback, behind the gate.
const (
	gatePort     = 18789
	openclawPort = 18790
	controlPort  = 18792 // the double's control API, loopback only
	// openclawTick is the OpenClaw gateway's tick: a node that misses
	// ticks reconnects, so a short one brings a cut-off node back soon.
	openclawTick = 2 * time.Second
	// The gate probes each node host's /healthz this often, each probe
	// bounded by peerTimeout.
	peerInterval  = 2 * time.Second
	peerTimeout   = 1500 * time.Millisecond
	dialTimeout   = 2 * time.Second
	headerTimeout = 3 * time.Second
)

// lab is the tailnet's control server and relay (internal/cmd/tailnet-lab).
type lab struct {
	controlURL string
	domain     string // MagicDNS suffix: <hostname>.<domain>
	authKey    string // what every node must present
}

// startLab runs the lab container and waits for its control URL.
func (w *world) startLab(ctx context.Context) lab {
	w.t.Helper()
	l := lab{authKey: w.secret()}
	w.secretEnv = append(w.secretEnv, "TAILNET_LAB_AUTH_KEY="+l.authKey)
	w.run(ctx, "lab", w.onNetwork("lab"), []string{"-e", "TAILNET_LAB_AUTH_KEY"},
		"tailnet-lab", "--tags", strings.Join([]string{tagGate, tagNode, tagTester, tagIntruder}, ","))
	m := w.waitLog(ctx, "lab", `tailnet-lab: control (http://\S+) .* magicdns (\S+)`, 30*time.Second)
	l.controlURL, l.domain = m[1], m[2]
	return l
}

// nodeHost is a node host: `clawguard node`, an OpenClaw headless node
// host that connects to the OpenClaw gateway through the gate over the
// tailnet and serves the sidecar API on the tailnet to the gate's tag
// (docs/nodes.md), with its own vault, the gate's identity key, node
// execution on and its own approvals: agent "main" may run `hostname` on
// this host and nothing else.
type nodeHost struct {
	name        string
	identityKey string // the HMAC key the gate signs with for this node
}

// newNode names node host name and makes its identity key, which the
// gateway host needs too.
func (w *world) newNode(name string) nodeHost {
	return nodeHost{name: name, identityKey: w.secret()}
}

// startNode runs node host n, which connects to g's OpenClaw gateway. It
// needs the Docker engine's socket: the sidecar drives this host's
// sandboxes through it (the test's engine stands in for the node host's
// own).
func (w *world) startNode(ctx context.Context, l lab, g gatewayHost, n nodeHost) {
	w.t.Helper()
	sock, err := engineSocket()
	if err != nil {
		w.t.Fatal(err)
	}
	w.run(ctx, n.name, w.onNetwork(n.name), sock, hold("clawguard", "node", "--log-format", "text",
		// Plain ws://: the connection is the tailnet's, to the gate's
		// MagicDNS name.
		"--gateway", fmt.Sprintf("ws://gate.%s:%d", l.domain, gatePort), "--token", "{vault.openclaw_token}",
		"--display-name", n.name,
		"--tailnet", n.name, "--tailnet-control-url", l.controlURL, "--tailnet-auth-key", "{vault.ts_authkey}",
		"--tailnet-tags", tagNode, "--tailnet-allow-tags", tagGate)...)
	w.configure(ctx, n.name,
		map[string]string{"ts_authkey": l.authKey, "gate_identity": n.identityKey, "openclaw_token": g.openclawToken},
		map[string]string{
			"sidecar.json": fmt.Sprintf(`{"version": 1, "instance": %q, "identity_keys": {"gate": "gate_identity"},
				"node_exec": {"path": "/usr/bin:/bin", "timeout": "10s"}}`, w.container(n.name)),
			"approvals.json": nodeApprovals,
		})
}

// nodeApprovals is every node host's approvals file. Busybox applets are
// judged as /bin/busybox with the applet name first.
const nodeApprovals = `{"version": 1, "defaults": {"mode": "allowlist"},
	"agents": {"main": {"mode": "allowlist", "node": true, "allow": [{"path": "/bin/busybox", "args": "^hostname$"}]}}}`

// engineSocket returns the docker run flags that give a container the
// engine's unix socket, and the socket's group so that the image's
// unprivileged user may use it.
func engineSocket() ([]string, error) {
	path := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		p, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			return nil, fmt.Errorf("DOCKER_HOST=%s: the node hosts' sidecars need the engine's unix socket", h)
		}
		path = p
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("docker socket for the node hosts: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("docker socket %s: no owner information", path)
	}
	return []string{"-v", path + ":/var/run/docker.sock", "--group-add", strconv.FormatUint(uint64(st.Gid), 10)}, nil
}

// gatewayCaddyfile is the gateway host's Caddy: the gate's node on the
// tailnet, watching each node host's sidecar /healthz, a site bound to it only, letting in the tester's and the node
// hosts' tags, a route per node host to its sidecar over the tailnet,
// signed, and everything else to the OpenClaw gateway on loopback.
var gatewayCaddyfile = template.Must(template.New("Caddyfile").Parse(`{
	admin localhost:2019
	tailnet {
		node gate {
			auth_key {vault.ts_authkey}
			control_url {{.ControlURL}}
			tags {{.Tag}}
		}
{{- range .Nodes}}
		peer {{.}} {{.}}:{{$.SidecarPort}} {
			interval {{$.PeerInterval}}
			timeout {{$.PeerTimeout}}
		}
{{- end}}
	}
}

http://:{{.Port}} {
	bind tailnet/gate
	clawguard {
		tailnet_identity {
			allow_tags {{.AllowTags}}
		}
	}
{{- range .Nodes}}
	handle_path /{{.}}/* {
		reverse_proxy {{.}}:{{$.SidecarPort}} {
			transport clawguard_tailnet gate {
				identity_key gate {vault.{{.}}_identity}
				dial_timeout {{$.DialTimeout}}
				response_header_timeout {{$.HeaderTimeout}}
			}
		}
	}
{{- end}}
	handle {
		reverse_proxy 127.0.0.1:{{.OpenClawPort}}
	}
}
`))

// gatewayHost is the gateway host: Caddy with the gate, and the OpenClaw
// gateway double beside it (container "openclaw", in the gateway's network
// namespace).
type gatewayHost struct {
	openclawToken string // the OpenClaw gateway's shared token
}

// startGateway runs the gateway host: Caddy in front of nodes, watching
// them, and of the OpenClaw gateway double, which it waits for.
func (w *world) startGateway(ctx context.Context, l lab, nodes ...nodeHost) gatewayHost {
	w.t.Helper()
	g := gatewayHost{openclawToken: w.secret()}
	vault := map[string]string{"ts_authkey": l.authKey}
	var names []string
	for _, n := range nodes {
		vault[n.name+"_identity"] = n.identityKey
		names = append(names, n.name)
	}
	var cf strings.Builder
	if err := gatewayCaddyfile.Execute(&cf, map[string]any{
		"ControlURL":    l.controlURL,
		"Tag":           tagGate,
		"Port":          gatePort,
		"AllowTags":     tagTester + " " + tagNode,
		"Nodes":         names,
		"SidecarPort":   sidecar.DefaultTailnetPort,
		"DialTimeout":   dialTimeout,
		"HeaderTimeout": headerTimeout,
		"OpenClawPort":  openclawPort,
		"PeerInterval":  peerInterval,
		"PeerTimeout":   peerTimeout,
	}); err != nil {
		w.t.Fatal(err)
	}
	w.run(ctx, "gateway", w.onNetwork("gateway"), nil,
		hold("clawguard", "caddy", "run", "--config", stateDir+"/Caddyfile", "--adapter", "caddyfile")...)
	w.configure(ctx, "gateway", vault, map[string]string{"Caddyfile": cf.String()})
	w.secretEnv = append(w.secretEnv, "OPENCLAW_GATEWAY_TOKEN="+g.openclawToken)
	w.run(ctx, "openclaw", w.beside("gateway"), []string{"-e", "OPENCLAW_GATEWAY_TOKEN"}, "openclaw-double",
		"-listen", "127.0.0.1:"+strconv.Itoa(openclawPort), "-control", "127.0.0.1:"+strconv.Itoa(controlPort),
		"-tick", openclawTick.String())
	w.waitLog(ctx, "openclaw", `"gateway":\s*"ws://`, 30*time.Second)
	return g
}
