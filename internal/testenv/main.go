package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Main runs a test package's tests against one environment, started before and
// stopped after them; use it from TestMain:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }
//
// If the environment cannot start, no test runs and the package fails with the
// reason (never a skip). When a test fails, the environment's directory and its
// component logs are kept and their paths printed; otherwise it is removed.
func Main(m *testing.M, opts Options, env **Env) int {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	made := opts.Dir == ""
	if made {
		d, err := os.MkdirTemp("", "storefleet-testenv-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		opts.Dir = d
	}
	e, err := Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the test environment did not start: %v\n", err)
		return 1
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stop: %v\n", err)
		code = 1
	}
	if left := e.Leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: processes left behind after Stop:\n  %s\n", strings.Join(left, "\n  "))
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "testenv: kept %s; component logs:\n", e.Dir)
		for _, f := range e.LogFiles() {
			fmt.Fprintln(os.Stderr, "  ", f)
		}
	} else if made {
		_ = os.RemoveAll(e.Dir)
	}
	return code
}

// StartT starts an environment for one test and stops it when the test ends,
// keeping its logs (and printing where) if the test failed.
func StartT(t testing.TB, opts Options) *Env {
	t.Helper()
	made := opts.Dir == ""
	if made {
		d, err := os.MkdirTemp("", "storefleet-testenv-")
		if err != nil {
			t.Fatal(err)
		}
		opts.Dir = d
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("the test environment did not start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			t.Logf("kept %s; component logs: %v", e.Dir, e.LogFiles())
		} else if made {
			_ = os.RemoveAll(e.Dir)
		}
	})
	return e
}

// RequireNode is how a test that needs the worker node starts. Only a machine
// that is not root may skip it, with the reason: network namespaces, cgroups and
// mounts cannot be had there at all, and CI runs as root. As root, a missing
// Debian package fails the test naming what `make deps` installs, so CI can never
// pass without having run it.
func RequireNode(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testenv node: needs root (network namespaces, cgroups and mounts); CI runs it as root")
	}
	if err := NodeHostReady(); err != nil {
		t.Fatal(err)
	}
}
