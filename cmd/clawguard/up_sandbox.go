package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawguard/clawguard/sandbox"
	"github.com/clawguard/clawguard/statedir"
	"github.com/clawguard/clawguard/wire"
)

// starterImageRepo is the repository of the sandbox image up builds from
// the host's static busybox when there is no sidecar.json yet.
const starterImageRepo = "clawguard-sandbox-busybox"

// starterSandbox gives a first run a sandbox where it can: with no
// sidecar.json in the state directory, a reachable Docker Engine and a
// static busybox on the host, it builds a busybox image and writes a
// sidecar.json whose "*" profile uses it (every other setting the
// sandbox's safe defaults), and an approvals.json that asks a person about
// every command. An existing sidecar.json or approvals.json is never
// touched. It returns what it did, or exactly what is missing, as one line
// for the banner; only a failure to write a file is an error.
func starterSandbox(ctx context.Context, stateDir string) (string, error) {
	cfgPath := filepath.Join(stateDir, wire.FileSidecarConfig)
	if _, err := os.Stat(cfgPath); err == nil {
		return "profiles from " + cfgPath, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("up: %w", err)
	}
	none := "none yet; sandboxed commands are refused (no_sandbox_profile) until " + cfgPath + " names a profile: "
	cli, err := sandbox.NewClient()
	if err != nil {
		return none + "no Docker client: " + err.Error(), nil
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
	cancel()
	if err != nil {
		return none + "the Docker Engine is not reachable at " + cli.DaemonHost() + " (start it, or set DOCKER_HOST)", nil
	}
	if _, err := os.Stat(sandbox.DefaultBusybox); err != nil {
		return none + sandbox.DefaultBusybox + " is missing to build a starter image from (apt-get install busybox-static), or name an image of yours", nil
	}
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	image, err := sandbox.BusyboxImage(bctx, cli, starterImageRepo, sandbox.DefaultBusybox, map[string]string{"clawguard.starter": "1"})
	if err != nil {
		return none + err.Error(), nil
	}
	profile := map[string]any{"image": image}
	how := "commands run by the exec agent"
	if _, err := sandbox.FindAgent(); err != nil {
		// Without the agent the profile still works, through docker exec.
		profile["exec"] = "docker"
		how = `"exec": "docker" (no clawguard-agent next to this binary or on PATH; go install ./cmd/clawguard-agent for fast execs)`
	}
	cfg, err := json.MarshalIndent(map[string]any{"version": 1, "sandboxes": map[string]any{"*": profile}}, "", "  ")
	if err != nil {
		return "", err
	}
	if err := statedir.WriteFile(cfgPath, append(cfg, '\n')); err != nil {
		return "", fmt.Errorf("up: writing the starter sandbox config: %w", err)
	}
	msg := "starter profile \"*\" with image " + image + " (busybox) in " + cfgPath + "; " + how
	apPath := filepath.Join(stateDir, wire.FileApprovals)
	if _, err := os.Stat(apPath); errors.Is(err, os.ErrNotExist) {
		if err := statedir.WriteFile(apPath, []byte(starterApprovals)); err != nil {
			return "", fmt.Errorf("up: writing the starter approvals file: %w", err)
		}
		msg += "; " + apPath + " asks a person about every command"
	}
	return msg, nil
}

// starterApprovals asks a person about every command, for two minutes,
// then denies it.
const starterApprovals = `{
  "version": 1,
  "defaults": {"mode": "ask", "ask_timeout": "2m", "ask_fallback": "deny"}
}
`
