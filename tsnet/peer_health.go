package tsnet

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Peer states reported by Peers and the admin API.
const (
	PeerUnknown = "unknown" // no probe has ended yet
	PeerUp      = "up"      // the last probe got a 200
	PeerDown    = "down"    // the last probe failed; LastError says how
)

// PeerHealth is a watched peer's state as the audit, the metrics and the
// admin API see it.
type PeerHealth struct {
	Peer        string    `json:"peer"`                   // name in the config
	Address     string    `json:"address"`                // host:port probed
	Via         string    `json:"via"`                    // node dialed through
	Up          bool      `json:"up"`                     // State == PeerUp
	State       string    `json:"state"`                  // one of the Peer* constants
	Since       time.Time `json:"since"`                  // when State was entered
	LastSeen    time.Time `json:"last_seen,omitzero"`     // the last 200
	LastError   string    `json:"last_error,omitempty"`   // the last failure's reason, kept after recovery
	LastErrorAt time.Time `json:"last_error_at,omitzero"` // when LastError was seen
	Probes      uint64    `json:"probes"`                 // probes ended
	Failures    uint64    `json:"failures"`               // probes failed
	LatencyMS   float64   `json:"latency_ms,omitempty"`   // of the last 200
}

// Peers reports every watched peer of this process, sorted by name.
func Peers() []PeerHealth {
	var out []PeerHealth
	for _, w := range watches.all() {
		out = append(out, w.snapshot())
	}
	slices.SortFunc(out, func(a, b PeerHealth) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}

// PeerStatus reports the peer called name; ok is false when no config
// watches it.
func PeerStatus(name string) (h PeerHealth, ok bool) {
	w := watches.current(name)
	if w == nil {
		return PeerHealth{}, false
	}
	return w.snapshot(), true
}

// Problem describes a down peer for people (the audit, the status
// command), or returns "" for one that is up or not probed yet.
func (h PeerHealth) Problem() string {
	if h.State != PeerDown {
		return ""
	}
	return fmt.Sprintf("node host %s (%s, via tailnet node %s) is down since %s: %s",
		h.Peer, h.Address, h.Via, h.Since.Format(time.RFC3339), h.LastError)
}

// Peer metrics. Peer names come from the config, so the label is bounded.
var (
	peerUpDesc = prometheus.NewDesc("clawguard_tailnet_peer_up",
		"Whether the watched node host answered its last health probe with 200 (1) or not (0: failed, or not probed yet).",
		[]string{"peer"}, nil)
	peerLastSeenDesc = prometheus.NewDesc("clawguard_tailnet_peer_last_seen_timestamp_seconds",
		"When the watched node host last answered its health probe with 200, in seconds since the epoch; absent until it has.",
		[]string{"peer"}, nil)
	peerFailuresDesc = prometheus.NewDesc("clawguard_tailnet_peer_probe_failures_total",
		"Health probes of the watched node host that failed (error, timeout or a status other than 200).",
		[]string{"peer"}, nil)
)

// peerCollector is the peer metrics of one config's peers, read live at
// scrape time.
type peerCollector []string

// NewPeerCollector returns the collector of the clawguard_tailnet_peer_*
// metrics for the named peers, for a config's registry.
func NewPeerCollector(names ...string) prometheus.Collector {
	return peerCollector(slices.Clone(names))
}

func (c peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- peerUpDesc
	ch <- peerLastSeenDesc
	ch <- peerFailuresDesc
}

func (c peerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c {
		h, _ := PeerStatus(name)
		up := 0.0
		if h.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(peerUpDesc, prometheus.GaugeValue, up, name)
		ch <- prometheus.MustNewConstMetric(peerFailuresDesc, prometheus.CounterValue, float64(h.Failures), name)
		if !h.LastSeen.IsZero() {
			ch <- prometheus.MustNewConstMetric(peerLastSeenDesc, prometheus.GaugeValue, float64(h.LastSeen.UnixMilli())/1000, name)
		}
	}
}

var _ prometheus.Collector = peerCollector(nil)
