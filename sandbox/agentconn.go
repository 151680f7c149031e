package sandbox

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawguard/clawguard/internal/execagent"
)

// Agent connection timing.
const (
	// agentHandshakeTimeout bounds hello and the first ping.
	agentHandshakeTimeout = 20 * time.Second
	// agentWriteTimeout bounds one frame write to the agent: an agent that
	// stops reading its stdin is broken.
	agentWriteTimeout = 10 * time.Second
	// agentKillWait is how long a killed command's Exit may take.
	agentKillWait = 5 * time.Second
	// maxRuns bounds the queued alternations of stdout and stderr of one
	// stream (the bytes are bounded by the credit window).
	maxRuns = 256
	// agentStderrTail is how much of the agent's own stderr is kept for
	// the log when it fails.
	agentStderrTail = 512
)

// errAgentGone is the cause of a connection closed by the sidecar itself
// (the container is being removed, or the sidecar shuts down).
var errAgentGone = errors.New("the sandbox was removed")

// agentConn is the sidecar's end of one container's exec agent: the
// container's attached stdin and stdout, carrying execagent frames.
//
// Every byte from the agent is hostile (the agent runs as the sandbox user,
// so any command may kill or impersonate it): frame sizes, stream IDs, the
// credit window and the order of messages are checked here, and the first
// violation ends the connection; the manager then removes the container.
// Nothing the agent sends is buffered beyond the window it was granted.
type agentConn struct {
	cid   string // container ID, for errors
	att   client.HijackedResponse
	nonce string
	wmu   sync.Mutex

	mu        sync.Mutex
	streams   map[uint32]*agentStream
	next      uint32
	helloed   bool
	pinging   bool
	pong      chan struct{}
	hello     chan struct{}
	dead      chan struct{}
	err       error // why it ended; set before dead closes
	abandoned bool  // closed on purpose: onDead is not called
	onDead    func(error)
	stderr    []byte // tail of the agent's own stderr
}

// agentStream is one command on the connection.
type agentStream struct {
	id     uint32
	window int // bytes the agent may still send

	mu     sync.Mutex
	cond   *sync.Cond
	out    []byte
	errb   []byte
	runs   []run
	exited bool
	exit   execagent.Exit
	done   chan struct{} // Exit arrived and all output was delivered
	recv   chan struct{} // closed when a receiver of the output failed
}

type run struct {
	typ byte
	n   int
}

// attachAgent attaches to container id's stdio. Nothing is sent yet: the
// caller starts the container if needed, then calls handshake.
func attachAgent(ctx context.Context, cli *client.Client, id string, onDead func(error)) (*agentConn, error) {
	// Without a TTY the engine applies no detach keys to stdin, so frame
	// bytes such as ctrl-p ctrl-q pass through as they are.
	res, err := cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return nil, fmt.Errorf("attach to the sandbox's exec agent: %w", err)
	}
	return newAgentConn(id, res.HijackedResponse, onDead), nil
}

// newAgentConn starts reading the engine's multiplexed stream of att.
func newAgentConn(id string, att client.HijackedResponse, onDead func(error)) *agentConn {
	a := &agentConn{
		cid: id, att: att, nonce: randHex(16),
		streams: map[uint32]*agentStream{}, next: 1,
		pong: make(chan struct{}, 1), hello: make(chan struct{}), dead: make(chan struct{}),
		onDead: onDead,
	}
	go a.readLoop()
	return a
}

// handshake sends Hello and a ping and waits for both answers: only then
// does the container count as started (or pooled, or adopted).
func (a *agentConn) handshake(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, agentHandshakeTimeout)
	defer cancel()
	b, err := execagent.AppendJSON(nil, execagent.THello, 0, execagent.Hello{Version: execagent.Version, Nonce: a.nonce}, execagent.MaxStartPayload)
	if err != nil {
		return err
	}
	if err := a.write(b); err != nil {
		return err
	}
	select {
	case <-a.hello:
	case <-a.dead:
		return a.failure()
	case <-ctx.Done():
		a.fail(fmt.Errorf("the exec agent did not answer hello within %s", agentHandshakeTimeout))
		return a.failure()
	}
	return a.ping(ctx)
}

// ping sends a ping and waits for its pong.
func (a *agentConn) ping(ctx context.Context) error {
	a.mu.Lock()
	if a.pinging {
		a.mu.Unlock()
		return errors.New("sandbox agent: a ping is already outstanding")
	}
	a.pinging = true
	a.mu.Unlock()
	if err := a.write(execagent.Append(nil, execagent.TPing, 0, nil)); err != nil {
		return err
	}
	select {
	case <-a.pong:
		return nil
	case <-a.dead:
		return a.failure()
	case <-ctx.Done():
		a.fail(errors.New("the exec agent did not answer a ping"))
		return a.failure()
	}
}

// alive reports whether the connection still works.
func (a *agentConn) alive() bool {
	select {
	case <-a.dead:
		return false
	default:
		return true
	}
}

// failure is the error commands see once the connection ended.
func (a *agentConn) failure() error {
	<-a.dead
	if errors.Is(a.err, errAgentGone) {
		return fmt.Errorf("sandbox exec: %w while the command ran (deleted, pruned or shut down)", a.err)
	}
	return fmt.Errorf("sandbox exec: the sandbox's exec agent failed (%v); the sandbox was removed and is replaced on the next command", a.err)
}

// write sends encoded frames, bounded in time.
func (a *agentConn) write(b []byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if !a.alive() {
		return a.failure()
	}
	a.att.Conn.SetWriteDeadline(time.Now().Add(agentWriteTimeout))
	if _, err := a.att.Conn.Write(b); err != nil {
		a.fail(fmt.Errorf("writing to the exec agent: %w", err))
		return a.failure()
	}
	return nil
}

// fail ends the connection with err (the first cause wins) and, unless
// the sidecar closed it on purpose, tells the manager, which removes the
// container before fail returns.
func (a *agentConn) fail(err error) {
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		return
	}
	a.err = err
	streams := a.streams
	a.streams = map[uint32]*agentStream{}
	notify := !a.abandoned && !errors.Is(err, errAgentGone)
	close(a.dead)
	a.mu.Unlock()
	a.att.Close()
	for _, s := range streams {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	}
	if notify && a.onDead != nil {
		a.onDead(err) // before any command returns the error: its sandbox is gone by then
	}
}

// close ends the connection without blaming the agent: the container is
// being removed (errAgentGone), or the sidecar lets go of it (abandon).
func (a *agentConn) close(abandon bool) {
	a.mu.Lock()
	a.abandoned = a.abandoned || abandon
	a.mu.Unlock()
	a.fail(errAgentGone)
}

// stderrTail is the end of what the agent wrote to its own stderr.
func (a *agentConn) stderrTail() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.ToValidUTF8(string(a.stderr), "?")
}

// readLoop reads the attach stream until it ends or breaks the protocol.
func (a *agentConn) readLoop() {
	fr := execagent.NewReader(&demux{r: a.att.Reader, conn: a}, execagent.MaxPayload)
	for {
		f, err := fr.Read()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
				err = errors.New("the exec agent exited (its stream ended)")
				if t := a.stderrTail(); t != "" {
					err = fmt.Errorf("the exec agent exited (its stream ended; its last words: %q)", t)
				}
			case errors.Is(err, execagent.ErrFrame):
				err = fmt.Errorf("protocol violation: %v", err)
			default:
				err = fmt.Errorf("reading from the exec agent: %v", err)
			}
			a.fail(err)
			return
		}
		if err := a.dispatch(f); err != nil {
			a.fail(fmt.Errorf("protocol violation: %v", err))
			return
		}
	}
}

// dispatch handles one frame from the agent; an error is a violation.
func (a *agentConn) dispatch(f execagent.Frame) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.helloed {
		if f.Type != execagent.THello || f.Stream != 0 {
			return fmt.Errorf("frame of type %d on stream %d before hello", f.Type, f.Stream)
		}
		h, err := execagent.ParseHello(f.Payload)
		if err != nil {
			return err
		}
		if h.Version != execagent.Version {
			return fmt.Errorf("agent speaks protocol version %d, the sidecar %d", h.Version, execagent.Version)
		}
		if h.Nonce != a.nonce {
			return errors.New("hello answered with another nonce")
		}
		a.helloed = true
		close(a.hello)
		return nil
	}
	if f.Stream == 0 {
		if f.Type != execagent.TPong || len(f.Payload) != 0 || !a.pinging {
			return fmt.Errorf("unexpected frame of type %d on stream 0", f.Type)
		}
		a.pinging = false
		select {
		case a.pong <- struct{}{}:
		default:
		}
		return nil
	}
	s := a.streams[f.Stream]
	if s == nil {
		return fmt.Errorf("frame of type %d for stream %d, which is not open", f.Type, f.Stream)
	}
	switch f.Type {
	case execagent.TStdout, execagent.TStderr:
		n := len(f.Payload)
		if n == 0 {
			return fmt.Errorf("empty output frame on stream %d", f.Stream)
		}
		if n > s.window {
			return fmt.Errorf("stream %d sent %d bytes with %d bytes of credit", f.Stream, n, s.window)
		}
		s.window -= n
		s.enqueue(f.Type, f.Payload)
	case execagent.TExit:
		e, err := execagent.ParseExit(f.Payload)
		if err != nil {
			return err
		}
		delete(a.streams, f.Stream)
		s.mu.Lock()
		s.exited, s.exit = true, e
		s.cond.Broadcast()
		s.mu.Unlock()
	default:
		return fmt.Errorf("frame of type %d on stream %d", f.Type, f.Stream)
	}
	return nil
}

// enqueue queues output for delivery: per type in order, alternations of
// stdout and stderr kept in order up to maxRuns.
func (s *agentStream) enqueue(typ byte, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if typ == execagent.TStdout {
		s.out = append(s.out, p...)
	} else {
		s.errb = append(s.errb, p...)
	}
	switch k := len(s.runs); {
	case k > 0 && s.runs[k-1].typ == typ:
		s.runs[k-1].n += len(p)
	case k < maxRuns:
		s.runs = append(s.runs, run{typ, len(p)})
	default: // runs alternate, so the one before the last has this type
		s.runs[k-2].n += len(p)
	}
	s.cond.Broadcast()
}

// start sends a Start for st on a new stream, and delivers the stream's
// output to stdout and stderr as it comes, granting credit for what was
// delivered.
func (a *agentConn) start(st execagent.Start, stdout, stderr io.Writer) (*agentStream, error) {
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		return nil, errStopped
	}
	id := a.next
	a.next++
	if a.next == 0 {
		a.next = 1
	}
	s := &agentStream{id: id, window: execagent.InitialWindow, done: make(chan struct{}), recv: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	a.streams[id] = s
	a.mu.Unlock()
	b, err := execagent.AppendJSON(nil, execagent.TStart, id, st, execagent.MaxStartPayload)
	if err != nil {
		a.mu.Lock()
		delete(a.streams, id)
		a.mu.Unlock()
		return nil, fmt.Errorf("%w: the command and its environment exceed the agent's %d-byte limit", ErrInvalidRequest, execagent.MaxStartPayload)
	}
	if err := a.write(b); err != nil {
		return nil, err
	}
	go a.deliver(s, stdout, stderr)
	return s, nil
}

// kill asks the agent to kill the stream's process group.
func (a *agentConn) kill(s *agentStream) error {
	return a.write(execagent.Append(nil, execagent.TKill, s.id, nil))
}

// deliver writes the stream's output to its receivers and grants the agent
// credit for it, until the Exit and everything before it are delivered or
// the connection ends.
func (a *agentConn) deliver(s *agentStream, stdout, stderr io.Writer) {
	defer close(s.done)
	failed := false
	for {
		s.mu.Lock()
		for len(s.runs) == 0 && !s.exited && a.alive() {
			s.cond.Wait()
		}
		out, errb, runs, exited := s.out, s.errb, s.runs, s.exited
		s.out, s.errb, s.runs = nil, nil, nil
		s.mu.Unlock()
		if len(runs) == 0 {
			return // exited, or the connection ended
		}
		total := 0
		for _, r := range runs {
			w, buf := stdout, &out
			if r.typ == execagent.TStderr {
				w, buf = stderr, &errb
			}
			if _, err := w.Write((*buf)[:r.n]); err != nil && !failed {
				failed = true
				close(s.recv)
			}
			*buf = (*buf)[r.n:]
			total += r.n
		}
		if !exited {
			a.mu.Lock()
			s.window += total
			a.mu.Unlock()
			if a.write(execagent.Append(nil, execagent.TCredit, s.id, execagent.CreditPayload(uint32(total)))) != nil {
				return
			}
		}
	}
}

// demux yields the stdout part of the engine's multiplexed attach stream
// (8-byte headers: stream type, 3 zero bytes, big-endian length). The
// agent's stderr is kept as a short tail for the log; anything else ends
// the stream.
type demux struct {
	r    *bufio.Reader
	conn *agentConn
	left int // stdout bytes left in the current chunk
	hdr  [8]byte
}

func (d *demux) Read(p []byte) (int, error) {
	for d.left == 0 {
		if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
			return 0, err
		}
		n := int(binary.BigEndian.Uint32(d.hdr[4:]))
		switch d.hdr[0] {
		case 1: // stdout
			d.left = n
		case 2: // stderr: the agent's diagnostics
			buf := make([]byte, min(n, 4096))
			for n > 0 {
				k, err := io.ReadFull(d.r, buf[:min(n, len(buf))])
				d.conn.mu.Lock()
				d.conn.stderr = append(d.conn.stderr, buf[:k]...)
				if len(d.conn.stderr) > agentStderrTail {
					d.conn.stderr = d.conn.stderr[len(d.conn.stderr)-agentStderrTail:]
				}
				d.conn.mu.Unlock()
				if err != nil {
					return 0, err
				}
				n -= k
			}
		default:
			return 0, fmt.Errorf("engine attach stream: chunk of type %d", d.hdr[0])
		}
	}
	k, err := d.r.Read(p[:min(len(p), d.left)])
	d.left -= k
	return k, err
}
