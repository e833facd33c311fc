package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/storefleet/storefleet/internal/testenv"
)

const (
	// devChildGrace is how long the command has to exit after the stop signal
	// before its process group is killed: longer than gitops-api's default
	// --shutdown-grace (30 s), so it is not killed while it drains requests.
	devChildGrace = 40 * time.Second
	// supervisorGrace is how long the environment has to stop after SIGTERM: Stop
	// gives each group of components 15 s, then 10 s more after SIGKILL, and down
	// waits as long.
	supervisorGrace = 90 * time.Second
)

// dev is `make dev`: it runs args (gitops-api serve) against the environment in
// dir and, when asked to stop, stops the command first and then the environment,
// but only if dev started it. An environment dev started is ~1 GB of etcd,
// kube-apiserver and Flux controllers nobody would think of once gitops-api is
// gone; one that was already running (make testenv) is somebody's, who still uses
// it, so it stays up and dev says so.
//
// Both children are tied to this process so that it stays in charge of the order
// however it ends:
//   - each runs in a process group of its own, so a Ctrl-C at the terminal (sent to
//     the foreground group: make and dev) reaches them only through dev, once, and
//     the environment is not taken down under a command still using it;
//   - each has a parent-death signal (SIGTERM), so that if dev itself is killed
//     (SIGKILL, a crash) the command and the environment dev started stop too, the
//     environment through its supervisor's orderly Stop.
//
// SIGHUP (the terminal closed; unless dev runs under nohup) is a request to stop
// like SIGINT and SIGTERM. Further signals while the environment stops are caught
// and do not cut that short.
func dev(ctx context.Context, dir string, args []string, stdout, stderr io.Writer) (err error) {
	if len(args) == 0 {
		return errors.New("dev: no command; usage: storefleet-testenv dev [--dir DIR] -- COMMAND [ARG...]")
	}
	stop := newStopRequest(ctx)
	defer stop.release()

	st, sup, pid, err := devEnvironment(ctx, dir, stop, stdout)
	if sup != nil {
		// Whatever happens from here on, the environment dev started goes down
		// with it.
		defer func() { err = errors.Join(err, stopOwned(dir, sup, stdout)) }()
	} else if pid != 0 {
		defer func() {
			if supervisor(dir) == pid {
				fmt.Fprintf(stdout, "# left the test environment in %s running (pid %d), as dev found it; make testenv-down stops it\n", dir, pid)
			}
		}()
	}
	if errors.Is(err, errStopRequested) {
		return nil
	}
	if err != nil {
		return err
	}
	printUse(stdout, st)

	name := filepath.Base(args[0])
	c, err := startDevChild(expandDevArgs(args, st, dir), stdout, stderr)
	if err != nil {
		return err
	}
	if sup != nil {
		fmt.Fprintf(stdout, "# %s runs (pid %d); Ctrl-C stops it and then the test environment\n", name, c.pid())
	} else {
		fmt.Fprintf(stdout, "# %s runs (pid %d); Ctrl-C stops it and leaves the test environment running\n", name, c.pid())
	}
	envGone := watchSupervisor(dir, sup, pid, stop.quit)
	select {
	case <-c.done:
		// Anything it left in its group goes with it.
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		if c.err != nil {
			return fmt.Errorf("%s exited: %w", name, c.err)
		}
		return nil
	case <-stop.done:
		fmt.Fprintf(stdout, "# %v: stopping %s (pid %d)\n", stop.sig, name, c.pid())
		c.stop(forward(stop.sig), devChildGrace)
		return nil
	case <-envGone:
		// Somebody ran `make testenv-down`, or the supervisor died: what the
		// command works against is gone, so it stops too.
		fmt.Fprintf(stdout, "# the test environment in %s stopped; stopping %s (pid %d)\n", dir, name, c.pid())
		c.stop(syscall.SIGTERM, devChildGrace)
		return errors.New("the test environment stopped while dev ran")
	}
}

// watchSupervisor returns a channel closed when the environment's supervisor
// exits: sup, which dev started and reaps, or the process pid found running, which
// it can only poll.
func watchSupervisor(dir string, sup *supervisorProc, pid int, quit <-chan struct{}) <-chan struct{} {
	if sup != nil {
		return sup.done
	}
	gone := make(chan struct{})
	go func() {
		for supervisor(dir) == pid {
			select {
			case <-quit:
				return
			case <-time.After(time.Second):
			}
		}
		close(gone)
	}()
	return gone
}

// devEnvironment finds the environment in dir or starts one. It returns the
// environment's state and either the supervisor dev started (sup) or the pid of
// the one it found running; on error too, whichever is set tells the caller what
// to stop or to leave running.
func devEnvironment(ctx context.Context, dir string, stop *stopRequest, stdout io.Writer) (st testenv.State, sup *supervisorProc, pid int, err error) {
	if pid = supervisor(dir); pid != 0 {
		fmt.Fprintf(stdout, "# the test environment in %s is already running (pid %d): dev uses it and leaves it running when it stops\n", dir, pid)
		st, err = waitExisting(ctx, dir, pid, stop.done)
		return st, nil, pid, err
	}
	sup, err = startSupervisor(dir, &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}, stdout)
	if err != nil {
		return st, nil, 0, err
	}
	fmt.Fprintln(stdout, "# dev started this test environment and stops it when it stops")
	st, err = sup.waitReady(stop.done)
	return st, sup, 0, err
}

// waitExisting waits for an environment another process supervises (it may still
// be starting) and checks that its API server answers.
func waitExisting(ctx context.Context, dir string, pid int, stop <-chan struct{}) (testenv.State, error) {
	for {
		st, err := testenv.ReadState(dir)
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := testenv.CheckAPIServer(cctx, st.Kubeconfig); err != nil {
				return st, fmt.Errorf("the test environment in %s (pid %d) runs but its API server does not answer: %w; make testenv-down, then try again", dir, pid, err)
			}
			return st, nil
		}
		if supervisor(dir) != pid {
			return st, fmt.Errorf("the test environment in %s (pid %d) stopped while starting; see %s", dir, pid, filepath.Join(dir, "supervisor.log"))
		}
		select {
		case <-stop:
			return st, errStopRequested
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stopOwned stops the environment dev started: SIGTERM to its supervisor, which
// stops the components in order, then down, which reports (and kills) anything
// left behind and removes the state files.
func stopOwned(dir string, sup *supervisorProc, stdout io.Writer) error {
	fmt.Fprintf(stdout, "# stopping the test environment dev started (pid %d)\n", sup.cmd.Process.Pid)
	_ = sup.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-sup.done:
	case <-time.After(supervisorGrace):
		_ = sup.cmd.Process.Kill()
		<-sup.done
	}
	return down(dir, stdout)
}

// expandDevArgs replaces the placeholders in args with the environment's
// addresses, which are known only once it runs (ports are picked at start).
func expandDevArgs(args []string, st testenv.State, dir string) []string {
	r := strings.NewReplacer(
		"{fleetURL}", st.FleetURL,
		"{kubeconfig}", st.Kubeconfig,
		"{chartRepoURL}", st.ChartRepoURL,
		"{dir}", dir,
	)
	var out []string
	for _, a := range args {
		if a == "{nodeFlags}" {
			// Several arguments, or none: what the environment's cluster needs
			// (Helm's wait, the node's images).
			out = append(out, st.ServeFlags()...)
			continue
		}
		out = append(out, r.Replace(a))
	}
	return out
}

// devChild is the command dev runs, in a process group of its own.
type devChild struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it exited and was reaped
	err  error         // set before done is closed
}

func startDevChild(args []string, stdout, stderr io.Writer) (*devChild, error) {
	cmd := exec.Command(args[0], args[1:]...)
	// No stdin: in a background process group a read from the terminal would stop
	// the command (SIGTTIN) instead of failing.
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// When the output is not a file, Wait also waits for the copying, which a
	// process the command left behind could hold open for ever.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	c := &devChild{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *devChild) pid() int { return c.cmd.Process.Pid }

// forward is the signal the command gets when dev is asked to stop by sig: the
// same, so it stops as it would at the terminal, except SIGHUP, which a server may
// take for "reload"; it is to stop.
func forward(sig os.Signal) syscall.Signal {
	if s, ok := sig.(syscall.Signal); ok && s != syscall.SIGHUP {
		return s
	}
	return syscall.SIGTERM
}

// stop sends sig to the command's process group (so whatever it started gets it
// too), kills the group if the command has not exited after grace, and kills
// anything still left in the group once it has.
func (c *devChild) stop(sig syscall.Signal, grace time.Duration) {
	pgid := c.pid()
	_ = syscall.Kill(-pgid, sig)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// stopRequest is how dev learns it must stop: a signal (SIGINT, SIGTERM, SIGHUP)
// or, for a caller without signals (a test calling Run), ctx ending. done is
// closed once; sig, set before, is the signal that asked (forward says what the
// command gets for it).
type stopRequest struct {
	done chan struct{}
	sig  os.Signal
	sigs chan os.Signal
	quit chan struct{}
}

func newStopRequest(ctx context.Context) *stopRequest {
	r := &stopRequest{done: make(chan struct{}), sigs: make(chan os.Signal, 1), quit: make(chan struct{})}
	catch := []os.Signal{os.Interrupt, syscall.SIGTERM}
	// Catching SIGHUP would undo a nohup, which asked for dev to outlive the
	// terminal.
	if !signal.Ignored(syscall.SIGHUP) {
		catch = append(catch, syscall.SIGHUP)
	}
	signal.Notify(r.sigs, catch...)
	go func() {
		select {
		case r.sig = <-r.sigs:
		case <-ctx.Done():
			// main cancels ctx on the same SIGINT or SIGTERM that is on its way to
			// sigs; forward that signal rather than guess.
			select {
			case r.sig = <-r.sigs:
			case <-time.After(100 * time.Millisecond):
				r.sig = syscall.SIGTERM
			}
		case <-r.quit:
			return
		}
		close(r.done)
	}()
	return r
}

// release stops listening for signals. dev defers it first so that it runs last:
// until the environment is down, a further signal is caught, not fatal.
func (r *stopRequest) release() {
	close(r.quit)
	signal.Stop(r.sigs)
}
