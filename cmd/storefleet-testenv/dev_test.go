package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/testenv"
)

// TestDevStopsTheEnvironmentItStarted is `make dev` on a machine with no
// environment running, stopped with Ctrl-C: the command stops first, while the
// environment still answers, then the environment dev started, and nothing of it is
// left running.
func TestDevStopsTheEnvironmentItStarted(t *testing.T) {
	requireTools(t)
	dir := filepath.Join(t.TempDir(), "env")
	cleanupEnv(t, dir)

	d := startDev(t, dir)
	args := d.waitStandIn(t)
	d.checkArgs(t, args)
	if n := len(testenv.ProcessesOf(dir)); n < 7 {
		t.Fatalf("expected the supervisor and six components running under dev, found %v", testenv.ProcessesOf(dir))
	}

	d.interrupt(t)

	d.checkStandInStopped(t, "interrupt")
	if left := testenv.ProcessesOf(dir); len(left) > 0 {
		t.Fatalf("the environment dev started is still running after Ctrl-C: %v\n%s", left, d.out.String())
	}
	if got := runCmd(t, dir, "status"); !strings.HasPrefix(got, "down") {
		t.Fatalf("status after dev stopped:\n%s", got)
	}
	out := d.out.String()
	for _, want := range []string{
		"# dev started this test environment and stops it when it stops",
		"# stopping the test environment dev started",
		"down (" + dir + ")",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dev's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "left the test environment") {
		t.Errorf("dev says it left the environment running, but it started it:\n%s", out)
	}
}

// TestDevLeavesARunningEnvironmentUp is `make dev` while `make testenv` runs: dev
// uses that environment, and Ctrl-C stops the command only, says so, and leaves
// the environment as it was.
func TestDevLeavesARunningEnvironmentUp(t *testing.T) {
	requireTools(t)
	dir := filepath.Join(t.TempDir(), "env")
	cleanupEnv(t, dir)
	runCmd(t, dir, "up")
	pid := supervisor(dir)
	before := len(testenv.ProcessesOf(dir))

	d := startDev(t, dir)
	args := d.waitStandIn(t)
	d.checkArgs(t, args)

	d.interrupt(t)

	d.checkStandInStopped(t, "interrupt")
	if got := supervisor(dir); got != pid {
		t.Fatalf("supervisor of the environment dev found: pid %d before, %d after dev", pid, got)
	}
	if n := len(testenv.ProcessesOf(dir)); n != before {
		t.Fatalf("%d processes of the environment before dev, %d after: %v", before, n, testenv.ProcessesOf(dir))
	}
	if got := runCmd(t, dir, "status"); !strings.Contains(got, "# up (pid") {
		t.Fatalf("status after dev stopped:\n%s", got)
	}
	out := d.out.String()
	for _, want := range []string{
		fmt.Sprintf("# the test environment in %s is already running (pid %d)", dir, pid),
		fmt.Sprintf("# left the test environment in %s running (pid %d), as dev found it", dir, pid),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dev's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "stopping the test environment") {
		t.Errorf("dev stopped an environment it did not start:\n%s", out)
	}
	runCmd(t, dir, "down")
}

// standInCommand makes the test binary, run by dev as its command, play
// gitops-api serve: it records its arguments (to see what dev expanded), waits for
// a stop signal, and records which one arrived and whether the environment's API
// server still answered then (dev must stop the command before the environment).
const standInCommand = "dev-stand-in"

// standIn is the stand-in's main; args are REPORT followed by the command line
// dev expanded.
func standIn(args []string) int {
	report, args := args[0], args[1:]
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	// Written whole and renamed, so the test never reads half a file.
	if err := writeAtomic(report+".args", strings.Join(args, "\n")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sig := <-sigs
	api := "no --kubeconfig"
	if i := slices.Index(args, "--kubeconfig"); i >= 0 && i+1 < len(args) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		api = "answers"
		if err := testenv.CheckAPIServer(ctx, args[i+1]); err != nil {
			api = err.Error()
		}
	}
	if err := writeAtomic(report+".stopped", sig.String()+"\n"+api); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func writeAtomic(name, data string) error {
	if err := os.WriteFile(name+".tmp", []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(name+".tmp", name)
}

// devRun is a `storefleet-testenv dev` process, the test binary re-executed.
type devRun struct {
	dir, report string
	cmd         *exec.Cmd
	out         *syncBuffer
	done        chan struct{}
	err         error // set before done is closed
}

// startDev runs dev for dir with the stand-in as its command, in a process group
// of its own as make's recipe is at a terminal, so that interrupt can do what
// Ctrl-C does: signal the whole foreground group.
func startDev(t *testing.T, dir string) *devRun {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := &devRun{dir: dir, report: filepath.Join(t.TempDir(), "stand-in"), out: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(exe, "dev", "--dir", dir, "--",
		exe, standInCommand, d.report, "serve", "--fleet-url", "{fleetURL}", "--kubeconfig", "{kubeconfig}")
	d.cmd.Env = append(os.Environ(), selfEnv+"=1")
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			// The test failed with dev still running: SIGKILL, which its
			// parent-death signals turn into an orderly stop of its children.
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
		if t.Failed() {
			t.Logf("dev's output:\n%s", d.out.String())
		}
	})
	return d
}

// waitStandIn waits until dev has the environment and started the stand-in, and
// returns the stand-in's command line.
func (d *devRun) waitStandIn(t *testing.T) []string {
	t.Helper()
	deadline := time.After(5 * time.Minute)
	for {
		if data, err := os.ReadFile(d.report + ".args"); err == nil {
			return strings.Split(string(data), "\n")
		}
		select {
		case <-d.done:
			t.Fatalf("dev exited (%v) before it started its command:\n%s", d.err, d.out.String())
		case <-deadline:
			t.Fatalf("dev did not start its command within 5 minutes:\n%s", d.out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkArgs checks that dev replaced the placeholders with the running
// environment's addresses.
func (d *devRun) checkArgs(t *testing.T, args []string) {
	t.Helper()
	st, err := testenv.ReadState(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"serve", "--fleet-url", st.FleetURL, "--kubeconfig", filepath.Join(d.dir, "kubeconfig")}
	if !slices.Equal(args, want) || !strings.HasPrefix(st.FleetURL, "http://127.0.0.1:") {
		t.Fatalf("the command's arguments: got %q, want %q", args, want)
	}
}

// interrupt does what Ctrl-C at the terminal does to `make dev` (SIGINT to the
// foreground process group) and waits for dev to exit, successfully.
func (d *devRun) interrupt(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("dev did not exit within 3 minutes of SIGINT:\n%s", d.out.String())
	}
	if d.err != nil {
		t.Fatalf("dev after SIGINT: %v\n%s", d.err, d.out.String())
	}
}

// checkStandInStopped checks that the command got sig from dev while the
// environment still answered.
func (d *devRun) checkStandInStopped(t *testing.T, sig string) {
	t.Helper()
	data, err := os.ReadFile(d.report + ".stopped")
	if err != nil {
		t.Fatalf("the command did not record a stop signal: %v\n%s", err, d.out.String())
	}
	if got, want := string(data), sig+"\nanswers"; got != want {
		t.Fatalf("the command recorded %q when it was stopped, want %q (the signal forwarded, and the API server still up)", got, want)
	}
}

// requireTools makes sure the real control-plane binaries are there, through the
// testenv helper that builds them when missing (as every testenv test does), and
// fails with what to do when they cannot be had within the test's time.
func requireTools(t *testing.T) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		// Leave the rest of the test a few minutes, but never less than half.
		budget := max(time.Until(dl)-4*time.Minute, time.Until(dl)/2)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, budget)
		defer cancel()
	}
	if _, err := testenv.FindTools(ctx, root, true); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("dev runs the real control plane (etcd, kube-apiserver, Flux), whose binaries are missing and were not built within this test's time; run `make testenv-tools` first (~22 min cold on 2 cores): %v", err)
		}
		t.Fatalf("dev runs the real control plane (etcd, kube-apiserver, Flux), whose binaries are missing or failed to build; see `make testenv-tools`: %v", err)
	}
}

// cleanupEnv makes sure no process of the environment in dir outlives the test.
func cleanupEnv(t *testing.T, dir string) {
	t.Cleanup(func() {
		if len(testenv.ProcessesOf(dir)) > 0 {
			_ = Run(context.Background(), []string{"down", "--dir", dir}, os.Stderr, os.Stderr)
		}
	})
}

// runCmd runs one storefleet-testenv command for dir in this process.
func runCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := Run(ctx, append(args, "--dir", dir), &out, &out); err != nil {
		t.Fatalf("%v: %v\n%s\n(logs in %s)", args, err, out.String(), filepath.Join(dir, "logs"))
	}
	return out.String()
}

// syncBuffer is a bytes.Buffer the test reads while exec's goroutine writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
