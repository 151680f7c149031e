package pairing

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/wire"
)

// Defaults of Options.
const (
	DefaultWatchInterval = 250 * time.Millisecond
	DefaultFlushInterval = 10 * time.Second
)

// ErrClosed is returned by writes to a closed store.
var ErrClosed = errors.New("pairing store is closed")

// Options configures a Store. The zero value is the production default.
type Options struct {
	// WatchInterval is how often the store file is checked (one stat) for
	// changes by other processes. A revocation written by another process
	// takes effect within this interval. Default: 250ms.
	WatchInterval time.Duration
	// FlushInterval is how often last-seen times and addresses, kept in
	// memory on the request path, are written to the file. Default: 10s.
	FlushInterval time.Duration
	// NonceTTL is how long a challenge nonce is valid. Default: 60s.
	NonceTTL time.Duration
	// MaxNonces and NoncesPerClient bound the outstanding challenge nonces.
	// Defaults: 16384 and 64.
	MaxNonces, NoncesPerClient int
	// Logger receives errors of the background work. Default: none.
	Logger *zap.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Store holds the paired devices and pairing requests of one state
// directory in <dir>/devices.json, and the outstanding challenge nonces in
// memory.
//
// Reads (token checks, listings) use an immutable in-memory snapshot and cost
// no system call. Writes are read-modify-write cycles under a flock on the
// file, so several processes can share it; concurrent writes of this process
// are committed together in one atomic file replacement (group commit). A
// background loop stats the file every WatchInterval and reloads it when
// another process replaced it, which bounds how long a revocation made
// elsewhere takes to apply. Requests in progress registered with Track are
// ended when their token stops being valid.
type Store struct {
	dir, path string
	opts      Options
	nonces    *nonces
	csrfKey   [32]byte

	snap atomic.Pointer[snapshot]

	mu      sync.Mutex // serialises reloads and commits; guards stamp and changed
	stamp   fileStamp
	changed chan struct{}

	ops chan *op

	touchMu sync.Mutex
	touches map[string]touch

	live liveSet // requests in progress, ended when their token stops being valid

	stop, quit chan struct{}
	loopDone   chan struct{}
	liveDone   chan struct{}
	commitDone chan struct{}
	closeOnce  sync.Once
}

// snapshot is one published version of the state with its indexes.
type snapshot struct {
	state      *State
	err        error             // the file is unreadable: token checks fail closed
	byToken    map[string]string // token hash → id of an unrevoked device
	version    uint64
	nextExpiry time.Time // earliest request expiry, zero if none
	active     int       // devices with a valid token
}

// fileStamp identifies one version of the file: every write replaces it by
// rename, so the inode changes even when size and mtime would not.
type fileStamp struct {
	exists     bool
	dev, ino   uint64
	size, mtim int64
}

type op struct {
	fn   func(st *State, now time.Time) error
	done chan error
}

type touch struct {
	at time.Time
	ip string
}

// Open opens the store of dir, reading devices.json if it exists. Nothing is
// created until the first write. An unreadable or invalid file is an error:
// the gate refuses to start rather than forget devices.
func Open(dir string, opts Options) (*Store, error) {
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = DefaultWatchInterval
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.NonceTTL <= 0 {
		opts.NonceTTL = DefaultNonceTTL
	}
	if opts.MaxNonces <= 0 {
		opts.MaxNonces = defaultMaxNonces
	}
	if opts.NoncesPerClient <= 0 {
		opts.NoncesPerClient = defaultNoncesPerClient
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{
		dir:        dir,
		path:       filepath.Join(dir, wire.FileDevices),
		opts:       opts,
		nonces:     newNonces(opts.NonceTTL, opts.MaxNonces, opts.NoncesPerClient),
		changed:    make(chan struct{}),
		ops:        make(chan *op),
		touches:    map[string]touch{},
		live:       liveSet{byToken: map[string]map[*Live]struct{}{}},
		stop:       make(chan struct{}),
		quit:       make(chan struct{}),
		loopDone:   make(chan struct{}),
		liveDone:   make(chan struct{}),
		commitDone: make(chan struct{}),
	}
	rand.Read(s.csrfKey[:])
	s.snap.Store(&snapshot{state: newState()})
	s.mu.Lock()
	_, err := s.refreshLocked()
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("opening pairing store: %w", err)
	}
	go s.commitLoop()
	go s.watchLoop()
	go s.liveLoop()
	return s, nil
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Close writes pending last-seen updates and stops the background work.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.loopDone // the loop's final flush still commits
		<-s.liveDone
		close(s.quit)
		<-s.commitDone
	})
	return nil
}

// stampOf identifies the file version fi describes.
func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{exists: true, size: fi.Size(), mtim: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino = uint64(sys.Dev), uint64(sys.Ino)
	}
	return st
}

// statPath stats the store file by name: the watch loop's cheap check.
func (s *Store) statPath() (fileStamp, error) {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, err
	}
	return stampOf(fi), nil
}

// refreshLocked reloads the file if it changed since it was last read or
// written, and returns the current snapshot. A file that cannot be read or
// parsed publishes a failed snapshot (token checks fail closed, writes are
// refused) and returns the error. s.mu must be held.
func (s *Store) refreshLocked() (*snapshot, error) {
	cur := s.snap.Load()
	st, err := s.statPath()
	if err == nil && st == s.stamp && cur.err == nil {
		return cur, nil
	}
	state, stamp, err := s.readFile()
	if err != nil {
		err = fmt.Errorf("%s: %w", s.path, err)
		if cur.err == nil || cur.err.Error() != err.Error() {
			s.opts.Logger.Error("pairing store unreadable; device tokens are refused until it is fixed", zap.Error(err))
			s.publishLocked(&snapshot{state: cur.state, err: err})
		}
		return nil, err
	}
	s.stamp = stamp
	return s.publishLocked(indexState(state)), nil
}

// readFile reads and parses the file; a missing file is an empty state.
func (s *Store) readFile() (*State, fileStamp, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), fileStamp{}, nil
	}
	if err != nil {
		return nil, fileStamp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, err
	}
	stamp := stampOf(fi)
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fileStamp{}, err
	}
	if len(data) > maxFileBytes {
		return nil, fileStamp{}, fmt.Errorf("larger than %d bytes", maxFileBytes)
	}
	state, err := decodeState(data)
	if err != nil {
		return nil, fileStamp{}, err
	}
	return state, stamp, nil
}

// indexState builds a snapshot's indexes.
func indexState(st *State) *snapshot {
	sn := &snapshot{state: st, byToken: make(map[string]string, len(st.Devices))}
	for id, d := range st.Devices {
		if d.RevokedAt == nil && d.TokenHash != "" {
			sn.byToken[d.TokenHash] = id
			sn.active++
		}
	}
	for _, r := range st.Requests {
		if sn.nextExpiry.IsZero() || r.ExpiresAt.Before(sn.nextExpiry) {
			sn.nextExpiry = r.ExpiresAt
		}
	}
	return sn
}

// publishLocked makes sn current and wakes everyone waiting for a change.
func (s *Store) publishLocked(sn *snapshot) *snapshot {
	sn.version = s.snap.Load().version + 1
	s.snap.Store(sn)
	close(s.changed)
	s.changed = make(chan struct{})
	return sn
}

// Changed returns the current version and a channel closed when it changes
// (a write of this process, or another process's write seen by the watcher).
func (s *Store) Changed() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap.Load().version, s.changed
}

// update runs fn on a copy of the latest state (re-read if another process
// changed it) and writes the result. fn must leave the state untouched when
// it returns an error. Concurrent updates share one write.
func (s *Store) update(fn func(st *State, now time.Time) error) error {
	o := &op{fn: fn, done: make(chan error, 1)}
	select {
	case s.ops <- o:
		return <-o.done
	case <-s.quit:
		return ErrClosed
	}
}

// maxBatch bounds how many updates share one write.
const maxBatch = 256

func (s *Store) commitLoop() {
	defer close(s.commitDone)
	for {
		select {
		case o := <-s.ops:
			batch := []*op{o}
		more:
			for len(batch) < maxBatch {
				select {
				case o := <-s.ops:
					batch = append(batch, o)
				default:
					break more
				}
			}
			s.commit(batch)
		case <-s.quit:
			return
		}
	}
}

// commit applies a batch of updates in one locked read-modify-write cycle.
func (s *Store) commit(batch []*op) {
	errs := make([]error, len(batch))
	if err := s.commitLocked(batch, errs); err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	for i, o := range batch {
		o.done <- errs[i]
	}
}

func (s *Store) commitLocked(batch []*op, errs []error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := statedir.Ensure(s.dir); err != nil {
		return err
	}
	unlock, err := statedir.Lock(s.path)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := s.refreshLocked()
	if err != nil {
		return fmt.Errorf("not writing over an unreadable store file (fix or remove it): %w", err)
	}
	now := s.opts.Now()
	st := cur.state.clone()
	dirty := st.prune(now) > 0
	for i, o := range batch {
		if errs[i] = o.fn(st, now); errs[i] == nil {
			dirty = true
		}
	}
	if !dirty {
		return nil
	}
	data, err := st.encode()
	if err != nil {
		return err
	}
	if err := statedir.WriteFile(s.path, data); err != nil {
		return err
	}
	// We hold the lock, so the file is still ours: remember its identity so
	// the watcher does not re-read our own write.
	stamp, err := s.statPath()
	if err != nil {
		return err
	}
	s.stamp = stamp
	s.publishLocked(indexState(st))
	return nil
}

// watchLoop notices other processes' writes, drops expired requests and
// nonces, and flushes last-seen updates.
func (s *Store) watchLoop() {
	defer close(s.loopDone)
	tick := time.NewTicker(s.opts.WatchInterval)
	defer tick.Stop()
	lastFlush := s.opts.Now()
	for {
		select {
		case <-s.stop:
			s.flushTouches()
			return
		case <-tick.C:
		}
		s.mu.Lock()
		s.refreshLocked() // errors are logged and published by refreshLocked
		s.mu.Unlock()
		now := s.opts.Now()
		if next := s.snap.Load().nextExpiry; !next.IsZero() && !now.Before(next) {
			// An empty update prunes; it writes only if something expired.
			if err := s.update(func(*State, time.Time) error { return errNoChange }); err != nil && !errors.Is(err, errNoChange) {
				s.opts.Logger.Warn("pruning expired pairing requests", zap.Error(err))
			}
		}
		if now.Sub(lastFlush) >= s.opts.FlushInterval {
			lastFlush = now
			s.nonces.sweep(now)
			s.flushTouches()
		}
	}
}

// errNoChange is returned by an update function that changed nothing.
var errNoChange = errors.New("no change")

// Touch records that device id was seen from ip. It costs a map write; the
// file is updated by the next flush.
func (s *Store) Touch(id, ip string, now time.Time) {
	s.touchMu.Lock()
	s.touches[id] = touch{at: now, ip: ip}
	s.touchMu.Unlock()
}

func (s *Store) takeTouches() map[string]touch {
	s.touchMu.Lock()
	defer s.touchMu.Unlock()
	if len(s.touches) == 0 {
		return nil
	}
	t := s.touches
	s.touches = map[string]touch{}
	return t
}

// flushTouches writes the recorded last-seen updates; on failure they are
// kept for the next flush unless newer ones arrived.
func (s *Store) flushTouches() {
	t := s.takeTouches()
	if t == nil {
		return
	}
	err := s.update(func(st *State, _ time.Time) error {
		for id, tc := range t {
			if d := st.Devices[id]; d != nil && (d.LastSeen == nil || tc.at.After(*d.LastSeen)) {
				at := tc.at.UTC()
				d.LastSeen, d.LastIP = &at, tc.ip
			}
		}
		return nil
	})
	if err != nil {
		s.opts.Logger.Warn("writing device last-seen times", zap.Error(err))
		s.touchMu.Lock()
		for id, tc := range t {
			if cur, ok := s.touches[id]; !ok || cur.at.Before(tc.at) {
				s.touches[id] = tc
			}
		}
		s.touchMu.Unlock()
	}
}

// Authenticate returns the unrevoked device whose token this is.
func (s *Store) Authenticate(token string) (Device, bool) {
	sn := s.snap.Load()
	if sn.err != nil {
		return Device{}, false
	}
	id, ok := sn.byToken[hashToken(token)]
	if !ok {
		return Device{}, false
	}
	return *sn.state.Devices[id], true
}

// PublicKey returns the Ed25519 key of an unrevoked device, for request
// signatures.
func (s *Store) PublicKey(id string) ([]byte, bool) {
	sn := s.snap.Load()
	d, ok := sn.state.Devices[id]
	if !ok || sn.err != nil || d.RevokedAt != nil {
		return nil, false
	}
	pub, err := b64.DecodeString(d.PublicKey)
	return pub, err == nil
}

// Err reports why the store file is unreadable, or nil.
func (s *Store) Err() error { return s.snap.Load().err }

// ActiveDevices is the number of devices with a valid token.
func (s *Store) ActiveDevices() int { return s.snap.Load().active }

// Devices lists the devices, oldest first, with unflushed last-seen updates
// applied and without token hashes.
func (s *Store) Devices() []DeviceView {
	sn := s.snap.Load()
	s.touchMu.Lock()
	out := make([]DeviceView, 0, len(sn.state.Devices))
	for _, d := range sn.state.Devices {
		v := DeviceView{Device: *d, Status: d.Status()}
		if t, ok := s.touches[d.ID]; ok && (v.LastSeen == nil || t.at.After(*v.LastSeen)) {
			at := t.at.UTC()
			v.LastSeen, v.LastIP = &at, t.ip
		}
		v.TokenHash = ""
		out = append(out, v)
	}
	s.touchMu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		return out[i].CreatedAt.Before(out[j].CreatedAt) || out[i].CreatedAt.Equal(out[j].CreatedAt) && out[i].ID < out[j].ID
	})
	return out
}

// Requests lists the unexpired requests with the given status (all when
// status is empty), oldest first.
func (s *Store) Requests(status string, now time.Time) []Request {
	sn := s.snap.Load()
	out := make([]Request, 0, len(sn.state.Requests))
	for _, r := range sn.state.Requests {
		if (status == "" || r.Status == status) && now.Before(r.ExpiresAt) {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].CreatedAt.Before(out[j].CreatedAt) || out[i].CreatedAt.Equal(out[j].CreatedAt) && out[i].ID < out[j].ID
	})
	return out
}

// request returns an unexpired request.
func (s *Store) request(id string, now time.Time) (Request, bool) {
	r, ok := s.snap.Load().state.Requests[id]
	if !ok || !now.Before(r.ExpiresAt) {
		return Request{}, false
	}
	return *r, true
}
