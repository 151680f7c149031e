package sandbox

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawguard/clawguard/internal/execagent"
)

// fakeAgent is the far end of an agentConn: it reads the sidecar's frames
// and writes what the test says, wrapped in the engine's stdout chunks.
type fakeAgent struct {
	t    testing.TB
	conn net.Conn
	fr   *execagent.Reader
}

func newFake(t testing.TB) (*agentConn, *fakeAgent, chan error) {
	side, far := net.Pipe()
	dead := make(chan error, 1)
	a := newAgentConn("test", client.NewHijackedResponse(side, ""), func(err error) { dead <- err })
	return a, &fakeAgent{t: t, conn: far, fr: execagent.NewReader(far, execagent.MaxStartPayload)}, dead
}

// send writes raw bytes as one engine stdout chunk.
func (f *fakeAgent) send(b []byte) {
	hdr := make([]byte, 8, 8+len(b))
	hdr[0] = 1
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(b)))
	f.conn.Write(append(hdr, b...))
}

func (f *fakeAgent) read() execagent.Frame {
	fm, err := f.fr.Read()
	if err != nil {
		f.t.Fatalf("fake agent: %v", err)
	}
	return fm
}

// hello answers the sidecar's hello (altered by mod) and, if it is good,
// its ping.
func (f *fakeAgent) hello(mod func(*execagent.Hello)) {
	fm := f.read()
	h, err := execagent.ParseHello(fm.Payload)
	if fm.Type != execagent.THello || err != nil || len(h.Nonce) < 16 || h.Version != execagent.Version {
		f.t.Errorf("sidecar's hello: %+v %v", h, err)
	}
	h.PID = 7
	if mod != nil {
		mod(&h)
	}
	b, _ := execagent.AppendJSON(nil, execagent.THello, 0, h, execagent.MaxPayload)
	f.send(b)
}

// TestAgentHandshake: a hello answered with another nonce, another
// version, or preceded by any other frame is refused; a good one and the
// pong make the connection ready.
func TestAgentHandshake(t *testing.T) {
	for name, c := range map[string]struct {
		mod    func(*execagent.Hello)
		before []byte
		want   string
	}{
		"other nonce":   {mod: func(h *execagent.Hello) { h.Nonce = "a stale one" }, want: "another nonce"},
		"other version": {mod: func(h *execagent.Hello) { h.Version = 2 }, want: "protocol version 2"},
		"output first":  {before: execagent.Append(nil, execagent.TStdout, 1, []byte("x")), want: "before hello"},
		"good":          {},
	} {
		t.Run(name, func(t *testing.T) {
			a, f, _ := newFake(t)
			defer a.close(true)
			errc := make(chan error, 1)
			go func() { errc <- a.handshake(context.Background()) }()
			if c.before != nil {
				f.read() // the hello
				f.send(c.before)
			} else {
				f.hello(c.mod)
				if c.want == "" {
					if fm := f.read(); fm.Type != execagent.TPing {
						t.Fatalf("after hello: frame type %d", fm.Type)
					}
					f.send(execagent.Append(nil, execagent.TPong, 0, nil))
				}
			}
			err := <-errc
			if c.want == "" {
				if err != nil || !a.alive() {
					t.Fatalf("good handshake: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || a.alive() {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// FuzzAgentStream feeds hostile bytes, as the agent's stdout, to a
// connection that shook hands and has a command running: it must not
// panic, and must end (the command then reports an error) or go on.
func FuzzAgentStream(f *testing.F) {
	f.Add(execagent.Append(nil, execagent.TStdout, 1, []byte("out")))
	e, _ := execagent.AppendJSON(nil, execagent.TExit, 1, execagent.Exit{Code: 3}, execagent.MaxPayload)
	f.Add(e)
	f.Add(execagent.Append(execagent.Append(nil, execagent.TStderr, 1, []byte("e")), execagent.TPong, 0, nil))
	f.Add([]byte{0, 0, 0, 5, 16, 0, 0, 0, 9})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		a, fk, _ := newFake(t)
		defer a.close(true)
		errc := make(chan error, 1)
		go func() { errc <- a.handshake(context.Background()) }()
		fk.hello(nil)
		fk.read()
		fk.send(execagent.Append(nil, execagent.TPong, 0, nil))
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, fk.conn) // the Start and any credit
		s, err := a.start(execagent.Start{Path: "x", Argv: []string{"x"}}, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		fk.send(in)
		fk.conn.Close()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Fatal("the stream neither ended nor failed after its input ended")
		}
		// The input has ended (EOF after in): the connection must notice.
		// A well-formed Exit in in may end the stream first, so wait.
		for deadline := time.Now().Add(5 * time.Second); a.alive(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the connection outlived the end of its input")
			}
		}
	})
}
