package execagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// exitGrace is how long the agent keeps reading a command's output after
// the command exited: a background child that holds the pipes open does
// not hold the Exit back longer.
const exitGrace = 500 * time.Millisecond

// readChunk is the most output bytes the agent sends in one frame.
const readChunk = 32 << 10

// Serve runs the agent: it reads frames from in, runs the commands they
// start and writes their frames to out, until in ends (nil) or breaks or a
// write to out fails (the error). Running commands are killed on return.
func Serve(in io.Reader, out io.Writer) error {
	a := &agent{out: out, cmds: map[uint32]*command{}, byPID: map[int]*command{}, failed: make(chan error, 1)}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	go a.reap(sigs)
	read := make(chan error, 1)
	go func() { read <- a.readLoop(NewReader(in, MaxStartPayload)) }()
	var err error
	select {
	case err = <-read:
	case err = <-a.failed:
	}
	a.reset()
	return err
}

type agent struct {
	out    io.Writer
	wmu    sync.Mutex
	failed chan error // the first write error

	mu    sync.Mutex
	cmds  map[uint32]*command // by stream
	byPID map[int]*command    // not yet reaped
}

// command is one started program and its stream.
type command struct {
	stream uint32
	pid    int
	exited chan struct{}
	status syscall.WaitStatus

	mu       sync.Mutex
	cond     *sync.Cond
	credit   int
	closed   bool // no more output is sent (the grace after exit passed, or the agent reset)
	orphaned bool // the sidecar that started it is gone: send nothing
}

func (a *agent) readLoop(fr *Reader) error {
	for {
		f, err := fr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading frames: %w", err)
		}
		switch f.Type {
		case THello:
			h, err := ParseHello(f.Payload)
			if err != nil {
				return err
			}
			a.reset()
			a.sendJSON(THello, 0, Hello{Version: Version, Nonce: h.Nonce, PID: os.Getpid()})
		case TPing:
			a.send(TPong, f.Stream, nil)
		case TStart:
			a.start(f)
		case TCredit:
			n, err := ParseCredit(f.Payload)
			if err != nil {
				return err
			}
			if c := a.lookup(f.Stream); c != nil {
				c.mu.Lock()
				c.credit += int(n)
				c.cond.Broadcast()
				c.mu.Unlock()
			}
		case TKill:
			if c := a.lookup(f.Stream); c != nil {
				syscall.Kill(-c.pid, syscall.SIGKILL)
			}
		default:
			return fmt.Errorf("%w: unknown type %d", ErrFrame, f.Type)
		}
	}
}

func (a *agent) lookup(stream uint32) *command {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cmds[stream]
}

// reset kills every command and forgets its stream: a new sidecar
// connection starts from nothing.
func (a *agent) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for s, c := range a.cmds {
		c.mu.Lock()
		c.orphaned, c.closed = true, true
		c.cond.Broadcast()
		c.mu.Unlock()
		syscall.Kill(-c.pid, syscall.SIGKILL)
		delete(a.cmds, s)
	}
}

// send writes one frame; the first failure ends Serve.
func (a *agent) send(typ byte, stream uint32, p []byte) {
	b := Append(make([]byte, 0, 4+HeaderSize+len(p)), typ, stream, p)
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if _, err := a.out.Write(b); err != nil {
		select {
		case a.failed <- fmt.Errorf("writing frames: %w", err):
		default:
		}
	}
}

func (a *agent) sendJSON(typ byte, stream uint32, v any) {
	b, err := AppendJSON(nil, typ, stream, v, MaxPayload)
	if err != nil { // only an Exit error could be long; Exit cuts it
		panic(err)
	}
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if _, err := a.out.Write(b); err != nil {
		select {
		case a.failed <- fmt.Errorf("writing frames: %w", err):
		default:
		}
	}
}

// start runs the command of a Start frame; a command that cannot start
// ends its stream at once with an Exit saying why.
func (a *agent) start(f Frame) {
	fail := func(code int, err error) {
		msg := err.Error()
		if len(msg) > MaxErrorLen {
			msg = msg[:MaxErrorLen]
		}
		a.sendJSON(TExit, f.Stream, Exit{Code: code, Error: msg})
	}
	var st Start
	if err := json.Unmarshal(f.Payload, &st); err != nil {
		fail(126, fmt.Errorf("start: %v", err))
		return
	}
	if f.Stream == 0 || a.lookup(f.Stream) != nil || len(st.Argv) == 0 {
		fail(126, fmt.Errorf("start: stream %d is in use or argv is empty", f.Stream))
		return
	}
	path, err := lookPath(st.Path, st.Env)
	if err != nil {
		fail(127, err)
		return
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		fail(126, err)
		return
	}
	defer null.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		fail(126, err)
		return
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		fail(126, err)
		return
	}
	c := &command{stream: f.Stream, exited: make(chan struct{}), credit: InitialWindow}
	c.cond = sync.NewCond(&c.mu)
	a.mu.Lock() // the reaper dispatches under mu: it cannot miss this pid
	pid, err := syscall.ForkExec(path, st.Argv, &syscall.ProcAttr{
		Dir: st.Dir, Env: st.Env, Files: []uintptr{null.Fd(), outW.Fd(), errW.Fd()},
		// Its own session and process group: Kill reaches the command
		// and the children it did not move elsewhere, nothing else.
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	if err == nil {
		c.pid = pid
		a.cmds[f.Stream] = c
		a.byPID[pid] = c
	}
	a.mu.Unlock()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		code := 126
		if errors.Is(err, syscall.ENOENT) {
			code = 127
		}
		fail(code, fmt.Errorf("exec %s: %w", st.Argv[0], err))
		return
	}
	go a.supervise(c, outR, errR)
}

// supervise streams c's output and sends its Exit once it has exited and
// its output has ended (or exitGrace passed).
func (a *agent) supervise(c *command, outR, errR *os.File) {
	var wg sync.WaitGroup
	for typ, f := range map[byte]*os.File{TStdout: outR, TStderr: errR} {
		wg.Add(1)
		go func() { defer wg.Done(); defer f.Close(); a.pump(c, typ, f) }()
	}
	<-c.exited
	deadline := time.Now().Add(exitGrace)
	outR.SetReadDeadline(deadline)
	errR.SetReadDeadline(deadline)
	t := time.AfterFunc(exitGrace, func() {
		c.mu.Lock()
		c.closed = true
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	wg.Wait()
	t.Stop()
	a.mu.Lock()
	if a.cmds[c.stream] == c {
		delete(a.cmds, c.stream)
	}
	a.mu.Unlock()
	c.mu.Lock()
	orphaned := c.orphaned
	c.mu.Unlock()
	if orphaned {
		return
	}
	e := Exit{Code: c.status.ExitStatus()}
	if c.status.Signaled() {
		e.Signal = int(c.status.Signal())
		e.Code = 128 + e.Signal
	}
	a.sendJSON(TExit, c.stream, e)
}

// pump sends what f yields as frames of typ, within c's credit.
func (a *agent) pump(c *command, typ byte, f *os.File) {
	buf := make([]byte, readChunk)
	for {
		c.mu.Lock()
		for c.credit == 0 && !c.closed {
			c.cond.Wait()
		}
		n, closed := min(c.credit, len(buf)), c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		k, err := f.Read(buf[:n])
		if k > 0 {
			c.mu.Lock()
			c.credit -= k
			orphaned := c.orphaned
			c.mu.Unlock()
			if !orphaned {
				a.send(typ, c.stream, buf[:k])
			}
		}
		if err != nil {
			return
		}
	}
}

// reap collects every exited child on SIGCHLD (one goroutine, no thread
// blocked in wait4 per command).
func (a *agent) reap(sigs <-chan os.Signal) {
	for range sigs {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			a.mu.Lock()
			if c := a.byPID[pid]; c != nil {
				delete(a.byPID, pid)
				c.status = ws
				close(c.exited)
			}
			a.mu.Unlock()
		}
	}
}

// lookPath resolves file like execvp, in the PATH of env.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", file)
}

// WarmArg, as a command's first argument to clawguard-agent itself, makes
// it a warm-up run: Warm(the other arguments), then exit. The sidecar runs
// it in a fresh pool container so the programs the agent's recent commands
// used are read once through the container's filesystem (with
// fuse-overlayfs, each container's first read of a file costs milliseconds)
// before a session's first command needs them. It executes nothing.
const WarmArg = "-warm"

// maxWarmBytes bounds what one warm-up run reads.
const maxWarmBytes = 256 << 20

// Warm resolves each name in the PATH of env like execvp and reads the
// file, at most maxWarmBytes in all. Names that do not resolve are skipped.
func Warm(names []string, env []string) {
	left := int64(maxWarmBytes)
	buf := make([]byte, 256<<10)
	for _, name := range names {
		p, err := lookPath(name, env)
		if err != nil {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			f.Close()
			continue
		}
		for left > 0 {
			n, err := f.Read(buf[:min(int64(len(buf)), left)])
			left -= int64(n)
			if err != nil {
				break
			}
		}
		f.Close()
	}
}
