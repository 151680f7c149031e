package sidecar

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultConfigPoll is how often the running sidecar compares its config
// file with what it started on.
const DefaultConfigPoll = 2 * time.Second

// configWatch notices that the config file changed after the sidecar
// started. The config is not reloaded: it decides which peers the socket
// serves, the identity keys, the workspace root and the sandbox profiles
// that running and pooled sandboxes were made from, so half-applying an
// edit could leave a sandbox under rules nobody wrote. Instead the change
// is reported — a warn log line, restart_needed in GET /healthz and the
// clawguard_sidecar_restart_needed gauge — until the sidecar restarts, or
// the file holds what it started on again.
type configWatch struct {
	file, stateDir string
	loaded         []byte // the content started on; nil: the file was missing
	log            *slog.Logger
	gauge          prometheus.Gauge

	mu     sync.Mutex
	notice string // "" while the file is what the sidecar runs on
}

func newConfigWatch(file, stateDir string, loaded []byte, log *slog.Logger, reg prometheus.Registerer) (*configWatch, error) {
	w := &configWatch{file: file, stateDir: stateDir, loaded: loaded, log: log,
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clawguard_sidecar_restart_needed",
			Help: "1 when the sidecar's config file changed after it started: restart the sidecar for the change to take effect.",
		})}
	if err := reg.Register(w.gauge); err != nil {
		return nil, err
	}
	return w, nil
}

// run checks the file every interval until ctx ends.
func (w *configWatch) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.check()
		}
	}
}

// check compares the file with what the sidecar started on and reports a
// change once per new state.
func (w *configWatch) check() {
	data, err := readConfigFile(w.file)
	missing := errors.Is(err, fs.ErrNotExist)
	var notice string
	switch {
	case missing && w.loaded == nil, err == nil && w.loaded != nil && bytes.Equal(data, w.loaded):
		// What the sidecar runs on.
	case missing:
		notice = "config file " + w.file + " was removed after the sidecar started; it still runs on the config it started with: restart the sidecar for the defaults to take effect"
	case err != nil:
		notice = "config file " + w.file + " changed after the sidecar started and cannot be read (" + err.Error() + "); the sidecar still runs on the config it started with, and a restart would fail until it is fixed"
	default:
		notice = "config file " + w.file + " changed after the sidecar started; the change is not in effect: restart the sidecar to apply it"
		if _, perr := ParseConfig(data, w.stateDir); perr != nil {
			notice += " (the new content is invalid, so a restart would fail until it is fixed: " + perr.Error() + ")"
		}
	}
	w.mu.Lock()
	prev := w.notice
	w.notice = notice
	w.mu.Unlock()
	if notice == prev {
		return
	}
	if notice == "" {
		w.gauge.Set(0)
		w.log.Info("config file matches the running config again; no restart needed", "file", w.file)
		return
	}
	w.gauge.Set(1)
	w.log.Warn("sidecar restart needed: "+notice, "file", w.file, "restart_needed", true)
}

// status is what GET /healthz adds: restart_needed while the file differs.
func (w *configWatch) status() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.notice == "" {
		return nil
	}
	return map[string]string{"restart_needed": w.notice}
}
