package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// Container labels. Every sandbox carries LabelSandbox=1 and LabelInstance,
// so a sidecar only ever adopts or removes its own containers.
const (
	LabelSandbox  = "clawguard.sandbox"
	LabelInstance = "clawguard.instance"
	LabelScope    = "clawguard.scope"
	LabelKey      = "clawguard.key"
	LabelProfile  = "clawguard.profile"
	LabelAgent    = "clawguard.agent"
	LabelHash     = "clawguard.config_hash"
	LabelPool     = "clawguard.pool"
)

// NewClient connects to the Docker Engine named by DOCKER_HOST (default the
// local socket), negotiating the API version down to what the engine speaks
// (1.40 and later; Docker 20.10 speaks 1.41).
func NewClient() (*client.Client, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return c, nil
}

// box is one sandbox container the manager owns.
type box struct {
	id       string
	name     string
	spec     *spec
	key      string // scope key; "" while idle in a pool
	session  string
	created  time.Time
	lastUsed time.Time
	inflight int
	pooled   bool       // came from (or sits in) a warm pool
	gone     bool       // removed or being removed; never handed out again
	agent    *agentConn // the exec agent's connection; nil for "exec": "docker"
}

// create creates and starts a container for s. key is "" for a pool
// container. The workspace directory is created if missing and re-checked
// (symlinks resolved) right before the mount, so a link swapped in after the
// config was loaded cannot move the bind outside the workspace root.
//
// Creation is not cancelled with ctx: a create the engine completed after the
// caller gave up would leave a container nobody knows about.
func (m *Manager) create(ctx context.Context, s *spec, key, session string, pool bool) (*box, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	start := time.Now()
	b, err := m.createContainer(ctx, s, key, session, pool)
	if err != nil {
		m.metrics.startFailures.Inc()
		return nil, err
	}
	m.metrics.start.Observe(time.Since(start).Seconds())
	return b, nil
}

func (m *Manager) createContainer(ctx context.Context, s *spec, key, session string, pool bool) (*box, error) {
	p := s.p
	var mounts []mount.Mount
	tmpfs := map[string]string{
		"/tmp": fmt.Sprintf("rw,nosuid,nodev,size=%dm,mode=1777", p.TmpMB),
	}
	if s.ws == "" {
		tmpfs[WorkspacePath] = fmt.Sprintf("rw,nosuid,nodev,size=%dm,mode=1777", p.TmpMB)
	} else {
		if err := m.ensureWorkspace(s.ws, p.User); err != nil {
			return nil, err
		}
		src, err := checkBindSource(s.ws, m.root, m.opts.ProtectedPaths)
		if err != nil {
			return nil, fmt.Errorf("sandbox profile %q: workspace: %w", s.name, err)
		}
		mounts = append(mounts, bindMount(src, WorkspacePath, p.Workspace == WorkspaceRO))
	}
	for _, mt := range p.Mounts {
		src, err := checkBindSource(mt.Source, m.root, m.opts.ProtectedPaths)
		if err != nil {
			return nil, fmt.Errorf("sandbox profile %q: mount %s: %w", s.name, mt.Target, err)
		}
		mounts = append(mounts, bindMount(src, mt.Target, mt.ReadOnly))
	}
	useAgent := p.Exec == ExecAgent
	if useAgent {
		src, err := m.agentBinary()
		if err != nil {
			return nil, fmt.Errorf("sandbox profile %q: exec \"agent\": %w", s.name, err)
		}
		mounts = append(mounts, bindMount(src, AgentPath, true))
	}

	scope := p.Scope
	labels := map[string]string{
		LabelSandbox:  "1",
		LabelInstance: m.opts.Instance,
		LabelScope:    string(scope),
		LabelProfile:  s.name,
		LabelAgent:    s.agent,
		LabelKey:      labelKey(s, session, key == ""),
		LabelHash:     s.hash,
	}
	if pool {
		labels[LabelPool] = "1"
	}
	init := true
	pids := p.PidsLimit
	mem := p.MemoryMB << 20
	name := "clawguard-" + m.opts.Instance + "-" + randHex(6)
	cfg := &container.Config{
		Image:      p.Image,
		User:       p.User,
		Cmd:        p.IdleCommand,
		Env:        []string{"PATH=" + p.Path, "HOME=/tmp"},
		WorkingDir: WorkspacePath,
		Hostname:   "sandbox",
		Labels:     labels,
	}
	if useAgent {
		// The agent is the container's process (under docker-init), its
		// stdin open for the sidecar's attach. StdinOnce stays false: a
		// sidecar that restarts attaches again and says hello anew.
		cfg.Entrypoint, cfg.Cmd = []string{AgentPath}, nil
		cfg.OpenStdin, cfg.StdinOnce = true, false
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = true, true, true
	}
	res, err := m.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   name,
		Config: cfg,
		HostConfig: &container.HostConfig{
			NetworkMode:    container.NetworkMode(p.Network),
			ReadonlyRootfs: true,
			Tmpfs:          tmpfs,
			Mounts:         mounts,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges"},
			Init:           &init,
			IpcMode:        container.IPCModePrivate,
			LogConfig:      container.LogConfig{Type: "none"},
			RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
			Resources: container.Resources{
				NanoCPUs:   int64(p.CPUs * 1e9),
				Memory:     mem,
				MemorySwap: mem + p.SwapMB<<20,
				PidsLimit:  &pids,
			},
		},
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("sandbox profile %q: image %q is not on this Docker host (the sidecar never pulls; build or load it first): %w", s.name, p.Image, err)
		}
		m.removeContainer(name, "create failed") // in case the engine created it anyway
		return nil, fmt.Errorf("create sandbox container: %w", err)
	}
	b := &box{id: res.ID, name: name, spec: s, key: key, session: session, created: time.Now(), lastUsed: time.Now(), pooled: pool}
	if useAgent {
		// Attached before the start, like docker run -i: nothing the
		// agent says (or the runtime, if it cannot start it) is missed.
		a, err := attachAgent(ctx, m.cli, res.ID, func(err error) { m.agentFailed(b, err) })
		if err != nil {
			m.removeContainer(res.ID, "attach failed")
			return nil, err
		}
		b.agent = a
	}
	if _, err := m.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		if b.agent != nil {
			b.agent.close(true)
		}
		m.removeContainer(res.ID, "start failed")
		return nil, fmt.Errorf("start sandbox container: %w", err)
	}
	if b.agent != nil {
		if err := b.agent.handshake(ctx); err != nil {
			b.agent.close(true)
			m.removeContainer(res.ID, "exec agent handshake failed")
			return nil, fmt.Errorf("start sandbox container: exec agent: %w", err)
		}
	}
	return b, nil
}

// agentBinary returns the agent binary to mount, checked again now: the
// file could have been replaced since the sidecar started.
func (m *Manager) agentBinary() (string, error) {
	if m.agentErr != nil {
		return "", m.agentErr
	}
	return CheckAgent(m.agentPath)
}

// agentFailed removes a registered sandbox whose exec agent died or broke
// the protocol; its running commands end with the connection's error, and
// an idle pool container is replaced at once. A box not registered yet is
// its creator's to clean up.
func (m *Manager) agentFailed(b *box, err error) {
	m.mu.Lock()
	registered := m.boxes[b.id] == b && !b.gone
	idlePool := b.key == ""
	pl := m.pools[b.spec.hash]
	m.mu.Unlock()
	if !registered {
		return
	}
	m.metrics.agentFailures.Inc()
	m.log.Warn("sandbox exec agent failed; removing the sandbox", "container", shortID(b.id), "profile", b.spec.name, "err", err)
	m.discard(b, "exec agent failed")
	if idlePool && pl != nil {
		m.refill(pl)
	}
}

func bindMount(src, target string, ro bool) mount.Mount {
	return mount.Mount{
		Type: mount.TypeBind, Source: src, Target: target, ReadOnly: ro,
		BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
	}
}

// labelKey is the human-readable clawguard.key label: agent/session,
// agent, or the profile name (shared); "pool" for a pool container.
func labelKey(s *spec, session string, pool bool) string {
	switch {
	case pool:
		return "pool"
	case s.p.Scope == ScopeSession:
		return s.agent + "/" + session
	case s.p.Scope == ScopeAgent:
		return s.agent
	}
	return s.name
}

// ensureWorkspace creates a missing workspace directory. The sandbox user
// must be able to write it: as root the sidecar hands it to that user; else
// it is made 0777, reachable only through workspace_root, which is 0700.
func (m *Manager) ensureWorkspace(dir, user string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("workspace %s: %w", dir, err)
	}
	if err := os.MkdirAll(m.root, 0o700); err != nil {
		return fmt.Errorf("workspace root %s: %w", m.root, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("workspace %s: %w", dir, err)
	}
	if os.Geteuid() == 0 {
		uid, gid, _ := strings.Cut(user, ":")
		u, _ := strconv.Atoi(uid)
		g, _ := strconv.Atoi(gid)
		if err := os.Chown(dir, u, g); err != nil {
			return fmt.Errorf("workspace %s: %w", dir, err)
		}
		return nil
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return fmt.Errorf("workspace %s: %w", dir, err)
	}
	return nil
}

// removeContainer force-removes a container (killing what runs in it),
// with its own deadline: it runs on shutdown and after cancellations too.
func (m *Manager) removeContainer(id, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := m.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		m.log.Error("remove sandbox container", "container", shortID(id), "reason", reason, "err", err)
		return
	}
	m.log.Debug("removed sandbox container", "container", shortID(id), "reason", reason)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
