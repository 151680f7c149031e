package pairing

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// maxSubscribers bounds the live event streams of one Server.
const maxSubscribers = 64

// Event is a message of the live feed (GET /.clawguard/api/events, a
// WebSocket): something in the listed topics changed, so a UI re-fetches
// them. Topics are "pairing" and "devices"; other sections of the UI (exec
// approvals) can add their own.
type Event struct {
	Type    string   `json:"type"` // "changed"
	Version uint64   `json:"version"`
	Topics  []string `json:"topics"`
}

// events streams a message after every change of the store. A WebSocket,
// not SSE: its connection is hijacked from the HTTP server, so Caddy's
// graceful shutdown on a reload does not wait for open UIs; Close ends the
// streams of a configuration that is unloaded.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if s.subscribers.Add(1) > maxSubscribers {
		s.subscribers.Add(-1)
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: "too_many_streams", Msg: "too many open event streams"})
		return
	}
	defer s.subscribers.Add(-1)
	// Accept's default Origin check (the Origin's host must be the Host)
	// comes on top of the gate's.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	defer c.CloseNow()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	ctx = c.CloseRead(ctx) // the client sends nothing; this handles its pings and close
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	for {
		version, changed := s.store.Changed()
		msg, _ := json.Marshal(Event{Type: "changed", Version: version, Topics: []string{"pairing", "devices"}})
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.Write(wctx, websocket.MessageText, msg)
		wcancel()
		if err != nil {
			return
		}
	wait:
		for {
			select {
			case <-changed:
				break wait
			case <-ping.C:
				pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
				err := c.Ping(pctx)
				pcancel()
				if err != nil {
					return
				}
			case <-ctx.Done():
				c.Close(websocket.StatusGoingAway, "server closing")
				return
			}
		}
	}
}
