package execagent

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// conn drives Serve over pipes the way the sidecar does, with the agent's
// commands running on this host.
type conn struct {
	t  *testing.T
	w  *io.PipeWriter
	fr *Reader
}

func serve(t *testing.T) *conn {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(inR, outW); outW.Close() }()
	t.Cleanup(func() {
		inW.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	c := &conn{t: t, w: inW, fr: NewReader(outR, MaxPayload)}
	c.sendJSON(THello, 0, Hello{Version: Version, Nonce: "n1"})
	f := c.read()
	h, err := ParseHello(f.Payload)
	if f.Type != THello || err != nil || h.Nonce != "n1" || h.Version != Version || h.PID != os.Getpid() {
		t.Fatalf("hello reply %+v %v", h, err)
	}
	return c
}

func (c *conn) sendJSON(typ byte, stream uint32, v any) {
	b, err := AppendJSON(nil, typ, stream, v, MaxStartPayload)
	if err != nil {
		c.t.Fatal(err)
	}
	c.w.Write(b)
}

func (c *conn) read() Frame {
	c.t.Helper()
	f, err := c.fr.Read()
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// collect gathers the output of stream until its Exit,
// granting credit for all it reads.
func (c *conn) collect(stream uint32) (stdout, stderr string, e Exit) {
	c.t.Helper()
	var so, se strings.Builder
	for {
		f := c.read()
		if f.Stream != stream {
			c.t.Fatalf("frame for stream %d, want %d", f.Stream, stream)
		}
		switch f.Type {
		case TStdout:
			so.Write(f.Payload)
		case TStderr:
			se.Write(f.Payload)
		case TExit:
			ex, err := ParseExit(f.Payload)
			if err != nil {
				c.t.Fatal(err)
			}
			return so.String(), se.String(), ex
		default:
			c.t.Fatalf("unexpected frame type %d", f.Type)
		}
		c.w.Write(Append(nil, TCredit, stream, CreditPayload(uint32(len(f.Payload)))))
	}
}

func (c *conn) start(stream uint32, argv ...string) {
	c.sendJSON(TStart, stream, Start{Path: argv[0], Argv: argv, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"})
}

func TestServeRunsCommands(t *testing.T) {
	c := serve(t)
	c.start(1, "sh", "-c", "echo out; echo err >&2; exit 3")
	so, se, e := c.collect(1)
	if so != "out\n" || se != "err\n" || e.Code != 3 || e.Signal != 0 {
		t.Fatalf("got %q %q %+v", so, se, e)
	}
	c.start(2, "no-such-program-here")
	if _, _, e := c.collect(2); e.Code != 127 || !strings.Contains(e.Error, "not found") {
		t.Fatalf("missing program: %+v", e)
	}
	c.sendJSON(TStart, 3, Start{Path: "/bin/true", Argv: []string{"true"}, Dir: "/nonexistent-dir"})
	if _, _, e := c.collect(3); e.Code != 127 || !strings.Contains(e.Error, "no such file") {
		t.Fatalf("missing cwd: %+v", e)
	}
	c.w.Write(Append(nil, TPing, 0, nil))
	if f := c.read(); f.Type != TPong {
		t.Fatalf("ping answered with type %d", f.Type)
	}
}

// TestServeKillsProcessGroup: Kill ends the command and its background
// child; another command on another stream keeps running.
func TestServeKillsProcessGroup(t *testing.T) {
	c := serve(t)
	c.start(1, "sh", "-c", "sleep 60 & echo $!; exec sleep 60")
	f := c.read()
	child, err := strconv.Atoi(strings.TrimSpace(string(f.Payload)))
	if f.Type != TStdout || err != nil {
		t.Fatalf("first frame %d %q", f.Type, f.Payload)
	}
	c.start(2, "sh", "-c", "sleep 1; echo survivor")
	c.w.Write(Append(nil, TKill, 1, nil))
	if _, _, e := c.collect(1); e.Code != 137 || e.Signal != 9 {
		t.Fatalf("killed command: %+v", e)
	}
	for deadline := time.Now().Add(5 * time.Second); alive(child); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("background child %d survived the kill", child)
		}
	}
	if so, _, e := c.collect(2); so != "survivor\n" || e.Code != 0 {
		t.Fatalf("the other stream: %q %+v", so, e)
	}
}

// alive reports whether pid runs: a zombie waiting for whoever adopted it
// (not every init reaps promptly) is dead.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// TestServeBackPressure: without credit the agent sends no more than the
// window, and the command waits instead of the agent buffering.
func TestServeBackPressure(t *testing.T) {
	c := serve(t)
	c.start(1, "head", "-c", strconv.Itoa(4*InitialWindow), "/dev/zero")
	got := 0
	for got < InitialWindow {
		f := c.read()
		if f.Type != TStdout {
			t.Fatalf("type %d after %d bytes", f.Type, got)
		}
		got += len(f.Payload)
	}
	if got != InitialWindow {
		t.Fatalf("sent %d bytes on a window of %d", got, InitialWindow)
	}
	// Nothing more comes until credit is granted.
	more := make(chan Frame, 1)
	go func() {
		f, err := c.fr.Read()
		if err == nil {
			more <- f
		}
		close(more)
	}()
	select {
	case f := <-more:
		t.Fatalf("frame of type %d beyond the window", f.Type)
	case <-time.After(300 * time.Millisecond):
	}
	c.w.Write(Append(nil, TCredit, 1, CreditPayload(uint32(3*InitialWindow))))
	f, ok := <-more
	if !ok {
		t.Fatal("no frame after credit")
	}
	total := got + len(f.Payload)
	so, _, e := c.collect(1)
	if total+len(so) != 4*InitialWindow || e.Code != 0 {
		t.Fatalf("got %d bytes, exit %+v", total+len(so), e)
	}
}

func TestServeRefusesBadFrames(t *testing.T) {
	inR, inW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(inR, io.Discard) }()
	inW.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0})
	if err := <-done; !errors.Is(err, ErrFrame) {
		t.Fatalf("Serve on garbage: %v", err)
	}
}
