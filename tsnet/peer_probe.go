package tsnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/clawguard/clawguard/wire"
)

// prober sends one peer's health requests over the tailnet.
type prober struct {
	spec PeerSpec
	url  string
	tr   *http.Transport
}

func newProber(spec PeerSpec, d *Dialer) *prober {
	return &prober{
		spec: spec,
		url:  "http://" + spec.Address + spec.Path,
		// One kept-alive connection per peer: a healthy peer costs one
		// request per interval, not a handshake each time. Proxy is nil:
		// HTTP(S)_PROXY is for the host's network, not the tailnet.
		tr: &http.Transport{
			// net/http lets a dial outlive the request that started it;
			// to a host that is gone it would hang for minutes, one more
			// every probe. Each ends with the probe's timeout instead.
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
				defer cancel()
				return d.Dial(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 1,
			MaxConnsPerHost:     1,
			DisableCompression:  true,
		},
	}
}

// close drops the kept-alive connection.
func (p *prober) close() { p.tr.CloseIdleConnections() }

// probeResult is one probe's outcome: err is "" when the peer answered 200.
type probeResult struct {
	err     string
	latency time.Duration
}

// maxProbeBody bounds what is read of a health answer (an error body is a
// few dozen bytes).
const maxProbeBody = 4 << 10

// maxCodeLen bounds the error code a reason repeats.
const maxCodeLen = 64

// probe sends one GET within the timeout. Failures become a reason for
// people: what failed and, for a timeout, whether the node host accepted
// the connection (hung) or never did (stopped or cut off).
func (p *prober) probe(ctx context.Context) probeResult {
	ctx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	defer cancel()
	var conn atomic.Int32 // how the request got its connection, a conn* constant
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if i.Reused {
			conn.Store(connReused)
		} else {
			conn.Store(connDialed)
		}
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return probeResult{err: err.Error()} // Validate keeps this from happening
	}
	start := time.Now()
	res, err := p.tr.RoundTrip(req)
	if err != nil {
		// The connection may be dead (a host that vanished): dial afresh next time.
		p.tr.CloseIdleConnections()
		return probeResult{err: p.failure(ctx, err, conn.Load())}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxProbeBody))
	latency := time.Since(start)
	switch {
	case res.StatusCode != http.StatusOK:
		return probeResult{err: p.status(res, body), latency: latency}
	case err != nil:
		p.tr.CloseIdleConnections()
		return probeResult{err: p.failure(ctx, err, conn.Load()), latency: latency}
	}
	return probeResult{latency: latency}
}

// How a probe got its connection.
const (
	connNone   = iota // no connection (yet)
	connDialed        // a new one: the node host accepted it
	connReused        // the kept-alive one of an earlier probe
)

// failure describes a request that got no answer. A timeout on a new
// connection tells a hung server from a host that never accepted; one on
// the kept-alive connection cannot, and the next probe dials afresh.
func (p *prober) failure(ctx context.Context, err error, conn int32) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	// A dial's own deadline (see newProber) counts as the probe's.
	case ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("GET %s: %v", p.spec.Path, err)
	case conn == connReused:
		return fmt.Sprintf("GET %s: no answer within %v on the open connection (is the node host stopped, cut off the tailnet or hung?)", p.spec.Path, p.spec.Timeout)
	case conn == connDialed:
		return fmt.Sprintf("GET %s: connected, but no answer within %v (is the node host's server hung?)", p.spec.Path, p.spec.Timeout)
	default:
		return fmt.Sprintf("GET %s: no connection within %v (is the node host stopped or cut off the tailnet?): %v", p.spec.Path, p.spec.Timeout, err)
	}
}

// status describes an answer other than 200, with the error code of a
// clawguard error body when there is one.
func (p *prober) status(res *http.Response, body []byte) string {
	// The status text and the body are the peer's words: only the number
	// and a bounded code are repeated.
	msg := fmt.Sprintf("GET %s answered %d %s", p.spec.Path, res.StatusCode, http.StatusText(res.StatusCode))
	var eb wire.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Code != "" {
		if len(eb.Code) > maxCodeLen {
			eb.Code = eb.Code[:maxCodeLen] + "…"
		}
		msg += fmt.Sprintf(" (code %q)", eb.Code)
	}
	return msg
}
