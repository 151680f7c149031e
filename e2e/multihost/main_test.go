package multihost

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// setup is what TestMain prepared: the image, or why there is none.
var setup struct {
	image     string
	noEngine  error // no Docker engine: the test skips (fails under CI)
	buildErr  error
	buildTime time.Duration
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if setup.noEngine = engineCheck(); setup.noEngine != nil {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := sweep(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "multihost: removing what earlier runs left:", err)
	}
	dir, err := os.MkdirTemp("", "clawguard-multihost-")
	if err != nil {
		setup.buildErr = err
		return m.Run()
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	image, built, err := buildImage(ctx, dir)
	setup.image, setup.buildErr, setup.buildTime = image, err, time.Since(start)
	if built {
		defer func() {
			if _, err := docker(context.Background(), nil, nil, "image", "rm", image); err != nil {
				fmt.Fprintln(os.Stderr, "multihost: removing the test image:", err)
			}
		}()
	}
	return m.Run()
}

// needImage skips t without a Docker engine (fails it under CI=true, where
// the engine is part of the setup) and fails it if the image could not be
// built.
func needImage(t *testing.T) string {
	t.Helper()
	if setup.noEngine != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", setup.noEngine)
		}
		t.Skipf("no Docker engine: %v", setup.noEngine)
	}
	if setup.buildErr != nil {
		t.Fatal(setup.buildErr)
	}
	t.Logf("image %s ready in %s (static binaries built, image built or found)", setup.image, setup.buildTime.Round(time.Millisecond))
	return setup.image
}
