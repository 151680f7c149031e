package caddymodule

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clawguard/clawguard/authn"
)

// gateMetrics are the gate's collectors (docs/design.md, "Metrics"). Label values
// are bounded: methods and results only, never a user, token or device.
type gateMetrics struct {
	// attempts holds clawguard_auth_attempts_total's series resolved once,
	// indexed [methodIndex][success], so the request path does no label
	// hashing and no map lookup.
	attempts    [len(metricMethodNames)][2]prometheus.Counter
	rateLimited prometheus.Counter
	hmacReplays prometheus.Counter // clawguard_hmac_replays_total
	pairing     *pairingMetrics    // pairing_requests_total, devices_paired (pairing_metrics.go)
}

// methodNone labels attempts that presented no credential at all.
const methodNone = "none"

// metricMethodNames are the method label's values, in methodIndex order.
var metricMethodNames = [...]string{string(authn.MethodToken), string(authn.MethodPassword), string(authn.MethodProxy),
	string(authn.MethodDevice), string(authn.MethodHMAC), string(authn.MethodTailnet), string(authn.MethodLocal), methodNone}

// methodIndex is method's index in metricMethodNames; the empty method and
// any other count as methodNone.
func methodIndex(method authn.Method) int {
	switch method {
	case authn.MethodToken:
		return 0
	case authn.MethodPassword:
		return 1
	case authn.MethodProxy:
		return 2
	case authn.MethodDevice:
		return 3
	case authn.MethodHMAC:
		return 4
	case authn.MethodTailnet:
		return 5
	case authn.MethodLocal:
		return 6
	}
	return 7
}

func newGateMetrics(reg prometheus.Registerer) (*gateMetrics, error) {
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "clawguard",
		Name:      "auth_attempts_total",
		Help:      "Authentication attempts at the gate, by method and result (success or failure).",
	}, []string{"method", "result"})
	rateLimited := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "clawguard",
		Name:      "auth_rate_limited_total",
		Help:      "Requests refused with 429 because the client was locked out after failed attempts.",
	})
	hmacReplays := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "clawguard",
		Name:      "hmac_replays_total",
		Help:      "RFC 9421 signed requests refused because their nonce was already used within max_age.",
	})
	if err := reg.Register(attempts); err != nil {
		return nil, fmt.Errorf("registering clawguard_auth_attempts_total: %w", err)
	}
	if err := reg.Register(rateLimited); err != nil {
		return nil, fmt.Errorf("registering clawguard_auth_rate_limited_total: %w", err)
	}
	if err := reg.Register(hmacReplays); err != nil {
		return nil, fmt.Errorf("registering clawguard_hmac_replays_total: %w", err)
	}
	pairing, err := newPairingMetrics(reg)
	if err != nil {
		return nil, err
	}
	m := &gateMetrics{rateLimited: rateLimited, hmacReplays: hmacReplays, pairing: pairing}
	// Every series exists from the start, so rate() and alerts see zeros
	// instead of gaps.
	for i, method := range metricMethodNames {
		m.attempts[i] = [2]prometheus.Counter{
			attempts.WithLabelValues(method, "failure"),
			attempts.WithLabelValues(method, "success"),
		}
	}
	return m, nil
}

func (m *gateMetrics) attempt(method authn.Method, ok bool) {
	i := 0
	if ok {
		i = 1
	}
	m.attempts[methodIndex(method)][i].Inc()
}
