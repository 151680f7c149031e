package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/clawguard/clawguard/wire"
	"github.com/coder/websocket"
)

// API serves a Queue over HTTP for people (docs/design.md, "Sidecar API"); the
// sidecar mounts its Routes behind its peer and identity checks:
//
//	GET  <prefix>?state=pending|decided|all  {"approvals": [Approval…]}
//	GET  <prefix>/{id}                       Approval
//	POST <prefix>/{id}  {"decision": "allow-once"|"allow-always"|"deny",
//	                     "args": "<pattern>"}  the decided Approval
//	GET  <prefix>/events                     WebSocket: FeedMessage…
//
// Refusals are JSON {"error", "code"}: 400 bad_request, 403 forbidden, 404
// not_found, 409 decided (with the approval), 422 allow_always_refused (the
// ask stays pending; with the approval), 500 answer_failed.
type API struct {
	// Queue is the queue served. Required.
	Queue *Queue
	// Caller returns who makes a request, recorded as the decider of the
	// asks they answer, or an error refusing them (403): only people who
	// may decide what agents run get here. Required.
	Caller func(*http.Request) (string, error)

	feeds atomic.Int32
}

// Feed limits.
const (
	// maxFeeds bounds the open live feeds.
	maxFeeds = 64
	// feedBuffer is how far a feed may fall behind before it is dropped.
	feedBuffer = 64
	// maxAnswerBytes bounds a POST body.
	maxAnswerBytes   = 64 << 10
	feedWriteTimeout = 10 * time.Second
	feedPing         = 30 * time.Second
)

// FeedMessage is one message of the live feed. The first is a "snapshot"
// of every pending ask; then "pending" for each new ask and "decided" when
// one is decided. A client that falls behind is disconnected (close status
// 1013, try again later) and should reconnect for a fresh snapshot.
type FeedMessage struct {
	Type      string     `json:"type"`
	Approvals []Approval `json:"approvals,omitempty"`
	Approval  *Approval  `json:"approval,omitempty"`
}

// Routes returns the handlers by http.ServeMux pattern under prefix (e.g.
// "/v1/approvals").
func (a *API) Routes(prefix string) map[string]http.Handler {
	return map[string]http.Handler{
		"GET " + prefix:             a.guard(a.list),
		"GET " + prefix + "/events": a.guard(a.events),
		"GET " + prefix + "/{id}":   a.guard(a.get),
		"POST " + prefix + "/{id}":  a.guard(a.answer),
	}
}

func (a *API) guard(h func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := a.Caller(r)
		if err != nil {
			writeAPIError(w, http.StatusForbidden, "forbidden", err.Error(), nil)
			return
		}
		h(w, r, who)
	})
}

func (a *API) list(w http.ResponseWriter, r *http.Request, _ string) {
	var out []Approval
	switch state := r.URL.Query().Get("state"); state {
	case "", string(StatePending):
		out = a.Queue.Pending()
	case "decided":
		out = a.Queue.Recent()
	case "all":
		out = append(a.Queue.Pending(), a.Queue.Recent()...)
	default:
		writeAPIError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("state %q is not one of pending, decided, all", state), nil)
		return
	}
	wire.WriteJSON(w, http.StatusOK, map[string][]Approval{"approvals": out})
}

func (a *API) get(w http.ResponseWriter, r *http.Request, _ string) {
	ap, ok := a.Queue.Get(r.PathValue("id"))
	if !ok {
		writeAPIError(w, http.StatusNotFound, "not_found", ErrNotFound.Error(), nil)
		return
	}
	wire.WriteJSON(w, http.StatusOK, ap)
}

func (a *API) answer(w http.ResponseWriter, r *http.Request, who string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAnswerBytes))
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "bad_request", "request body: "+err.Error(), nil)
		return
	}
	ans, err := ParseAnswer(body)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return
	}
	ans.By = who
	ap, err := a.Queue.Answer(r.PathValue("id"), ans)
	switch {
	case err == nil:
		wire.WriteJSON(w, http.StatusOK, ap)
	case errors.Is(err, ErrNotFound):
		writeAPIError(w, http.StatusNotFound, "not_found", err.Error(), nil)
	case errors.Is(err, ErrDecided):
		writeAPIError(w, http.StatusConflict, "decided", err.Error(), &ap)
	case errors.Is(err, ErrAllowAlwaysRefused):
		writeAPIError(w, http.StatusUnprocessableEntity, "allow_always_refused", err.Error(), &ap)
	default:
		writeAPIError(w, http.StatusInternalServerError, "answer_failed", err.Error(), &ap)
	}
}

// ParseAnswer decodes the body of POST <prefix>/{id}: exactly
// {"decision": …} with an optional "args" pattern for allow-always. Who
// answers comes from the request's identity, never from the body.
func ParseAnswer(data []byte) (Answer, error) {
	var body struct {
		Decision Choice `json:"decision"`
		Args     string `json:"args,omitempty"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return Answer{}, fmt.Errorf("answer: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Answer{}, errors.New("answer: trailing data after the JSON object")
	}
	switch body.Decision {
	case AllowOnce, DenyChoice:
		if body.Args != "" {
			return Answer{}, fmt.Errorf("answer: args applies to allow-always only, not %s", body.Decision)
		}
	case AllowAlways:
	case "":
		return Answer{}, errors.New(`answer: "decision" is required: allow-once, allow-always or deny`)
	default:
		return Answer{}, fmt.Errorf("answer: decision %q is not one of allow-once, allow-always, deny", body.Decision)
	}
	return Answer{Choice: body.Decision, Args: body.Args}, nil
}

// events streams the queue as FeedMessages on a WebSocket. The connection
// is hijacked, so the server's shutdown does not wait for it: the feed ends
// when the client goes, or when the queue closes.
func (a *API) events(w http.ResponseWriter, r *http.Request, _ string) {
	if a.feeds.Add(1) > maxFeeds {
		a.feeds.Add(-1)
		writeAPIError(w, http.StatusServiceUnavailable, "too_many_feeds", "too many open approval feeds", nil)
		return
	}
	defer a.feeds.Add(-1)
	// Accept checks that any Origin is the Host: a page elsewhere cannot
	// read the feed through a browser.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context())
	// Subscribe before listing, so no ask falls between the two.
	events, stop := a.Queue.Subscribe(feedBuffer)
	defer stop()
	if writeFeed(ctx, c, FeedMessage{Type: "snapshot", Approvals: a.Queue.Pending()}) != nil {
		return
	}
	ping := time.NewTicker(feedPing)
	defer ping.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				c.Close(websocket.StatusTryAgainLater, "feed ended (fell behind, or the sidecar is stopping); reconnect")
				return
			}
			if writeFeed(ctx, c, FeedMessage{Type: ev.Type, Approval: &ev.Approval}) != nil {
				return
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, feedWriteTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func writeFeed(ctx context.Context, c *websocket.Conn, m FeedMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, feedWriteTimeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, b)
}

// apiErrorBody is wire.ErrorBody with the ask it is about, if any.
type apiErrorBody struct {
	wire.ErrorBody
	Approval *Approval `json:"approval,omitempty"`
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string, ap *Approval) {
	body := apiErrorBody{ErrorBody: wire.ErrorBody{Error: msg, Code: code}}
	if ap != nil && ap.ID != "" {
		body.Approval = ap
	}
	wire.WriteJSON(w, status, body)
}
