package tsnet

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NodeHealth is a node's state as the audit, the metrics and the admin API
// see it. Error texts never contain the auth key.
type NodeHealth struct {
	Node        string       `json:"node"`                   // name in the config
	Hostname    string       `json:"hostname"`               // name in the tailnet
	DNSName     string       `json:"dns_name,omitempty"`     // MagicDNS name, once running
	State       string       `json:"state"`                  // one of the State* constants
	Since       time.Time    `json:"since"`                  // when State was entered
	Error       string       `json:"error,omitempty"`        // current problem, "" when none
	LastError   string       `json:"last_error,omitempty"`   // most recent problem, kept after recovery
	LastErrorAt time.Time    `json:"last_error_at,omitzero"` // when LastError was seen
	TailnetIPs  []netip.Addr `json:"tailnet_ips,omitempty"`  // once running
	Listeners   []uint16     `json:"listeners,omitempty"`    // tailnet ports being served
	Dialers     int          `json:"dialers,omitempty"`      // open Dialers (e.g. reverse_proxy transports)
}

// Up reports whether the node is on the tailnet and its listeners accept.
func (h NodeHealth) Up() bool { return h.State == StateRunning }

// Health reports every tailnet node of this process, sorted by name.
func Health() []NodeHealth {
	var out []NodeHealth
	for _, n := range nodes.all() {
		out = append(out, n.snapshot())
	}
	slices.SortFunc(out, func(a, b NodeHealth) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// NodeStatus reports the node called name; ok is false when no listener or
// sidecar uses a node of that name.
func NodeStatus(name string) (h NodeHealth, ok bool) {
	n := nodes.current(name)
	if n == nil {
		return NodeHealth{}, false
	}
	return n.snapshot(), true
}

func (n *node) snapshot() NodeHealth {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.health
	h.TailnetIPs = slices.Clone(h.TailnetIPs)
	for port := range n.listeners {
		h.Listeners = append(h.Listeners, port)
	}
	slices.Sort(h.Listeners)
	h.Dialers = n.dialers
	return h
}

// nodeUpDesc is clawguard_tailnet_node_up. Node names come from the config,
// so the label is bounded.
var nodeUpDesc = prometheus.NewDesc("clawguard_tailnet_node_up",
	"Whether the tailnet node is on the tailnet and serving (1) or not (0: starting, needs login, failed).",
	[]string{"node"}, nil)

// NodeSet is the nodes of one config: the declared ones and those its
// listeners use with default settings. It is also the config's collector
// of clawguard_tailnet_node_up, read live at scrape time.
type NodeSet struct {
	mu       sync.Mutex
	settings map[string]Settings // resolved, by node name
}

// NewNodeUpCollector returns a collector of clawguard_tailnet_node_up for
// the named nodes, for a program without Caddy (the sidecar) to register
// in its own registry.
func NewNodeUpCollector(names ...string) prometheus.Collector {
	c := NewNodeSet()
	for _, n := range names {
		c.Set(n, Settings{})
	}
	return c
}

// NewNodeSet returns an empty NodeSet.
func NewNodeSet() *NodeSet { return &NodeSet{settings: map[string]Settings{}} }

// Set declares node name with its resolved settings.
func (c *NodeSet) Set(name string, s Settings) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settings[name] = s
}

// Get returns the settings of node name, defaults for an undeclared one.
func (c *NodeSet) Get(name, stateDir string) (Settings, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.settings[name]; ok {
		return s, nil
	}
	s, err := (NodeConfig{}).Resolve(name, stateDir)
	if err != nil {
		return Settings{}, err
	}
	c.settings[name] = s
	return s, nil
}

func (c *NodeSet) Describe(ch chan<- *prometheus.Desc) { ch <- nodeUpDesc }

func (c *NodeSet) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := slices.Collect(maps.Keys(c.settings))
	c.mu.Unlock()
	for _, name := range names {
		up := 0.0
		if h, ok := NodeStatus(name); ok && h.Up() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(nodeUpDesc, prometheus.GaugeValue, up, name)
	}
}

var _ prometheus.Collector = (*NodeSet)(nil)
