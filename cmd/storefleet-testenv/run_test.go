package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/testenv"
)

// TestMain lets `up` start this test binary as its background `serve` process,
// the dev tests run it as the command, and dev run it as the stand-in for
// gitops-api (standIn).
func TestMain(m *testing.M) {
	if os.Getenv(selfEnv) == "1" {
		if len(os.Args) > 1 && os.Args[1] == standInCommand {
			os.Exit(standIn(os.Args[2:]))
		}
		ctx, stop := signalContext()
		defer stop()
		if err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	// The environments these tests start are about the CLI, not the shops: a node
	// (where one can run) imports only its own images, not the shops' 2 GB.
	if _, set := os.LookupEnv("STOREFLEET_NODE_IMAGES"); !set {
		os.Setenv("STOREFLEET_NODE_IMAGES", "")
	}
	os.Exit(m.Run())
}

// TestUpStatusDown is `make testenv` / `make testenv-down`: up prints a working
// KUBECONFIG, status sees it, down leaves no process behind.
func TestUpStatusDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "env")
	var out bytes.Buffer
	run := func(args ...string) string {
		t.Helper()
		out.Reset()
		if err := Run(ctx, append(args, "--dir", dir), &out, &out); err != nil {
			t.Fatalf("%v: %v\n%s\n(logs in %s)", args, err, out.String(), filepath.Join(dir, "logs"))
		}
		return out.String()
	}
	t.Cleanup(func() {
		if len(testenv.ProcessesOf(dir)) > 0 {
			_ = Run(context.Background(), []string{"down", "--dir", dir}, os.Stderr, os.Stderr)
		}
	})

	got := run("up")
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if !strings.Contains(got, "export KUBECONFIG="+kubeconfig+"\n") {
		t.Fatalf("up did not print the kubeconfig export:\n%s", got)
	}
	if err := testenv.CheckAPIServer(ctx, kubeconfig); err != nil {
		t.Fatalf("API server from the printed kubeconfig: %v", err)
	}
	if got := run("status"); !strings.Contains(got, "# up (pid") {
		t.Fatalf("status while up:\n%s", got)
	}
	if got := run("up"); !strings.Contains(got, "already up") {
		t.Fatalf("second up:\n%s", got)
	}
	if len(testenv.ProcessesOf(dir)) < 7 {
		t.Fatalf("expected the supervisor and six components running, found %v", testenv.ProcessesOf(dir))
	}
	run("down")
	if left := testenv.ProcessesOf(dir); len(left) > 0 {
		t.Fatalf("processes left after down: %v", left)
	}
	if got := run("status"); !strings.HasPrefix(got, "down") {
		t.Fatalf("status after down:\n%s", got)
	}
}
