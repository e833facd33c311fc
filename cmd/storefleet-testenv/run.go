package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/storefleet/storefleet/internal/testenv"
)

const usage = `usage: storefleet-testenv <command> [--dir DIR]
       storefleet-testenv dev [--dir DIR] -- COMMAND [ARG...]

  up       start the environment in the background and print how to use it
  status   say whether it runs, and where
  down     stop it; no process is left behind
  dev      run COMMAND against the environment (make dev: gitops-api serve),
           starting the environment first if it is not running; stopped
           (Ctrl-C, SIGTERM), it stops COMMAND and then the environment if it
           started it, and leaves one it found running. In ARGs, {fleetURL},
           {kubeconfig}, {chartRepoURL} and {dir} become the environment's.

DIR defaults to <checkout>/.data/testenv; the admin kubeconfig is DIR/kubeconfig and
the component logs are in DIR/logs.
`

// marker marks a directory as the environment's, so up may clear it.
const marker = ".storefleet-testenv"

// Run is the whole command; main only wires it to the process.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "environment directory (default <checkout>/.data/testenv)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			return err
		}
		*dir = filepath.Join(root, ".data", "testenv")
	}
	d, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	switch args[0] {
	case "up":
		return up(ctx, d, stdout)
	case "serve":
		return serve(ctx, d, stdout)
	case "status":
		return status(ctx, d, stdout)
	case "dev":
		return dev(ctx, d, fs.Args(), stdout, stderr)
	case "down":
		return down(d, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func pidFile(dir string) string { return filepath.Join(dir, "supervisor.pid") }

// supervisor returns the pid of the background process holding the environment,
// or 0 when none runs.
func supervisor(dir string) int {
	data, err := os.ReadFile(pidFile(dir))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if syscall.Kill(pid, 0) != nil {
		return 0
	}
	// The pid may have been reused by an unrelated process.
	cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if !strings.Contains(string(cmd), dir) {
		return 0
	}
	return pid
}

func printUse(stdout io.Writer, st testenv.State) {
	fmt.Fprintf(stdout, "export KUBECONFIG=%s\n", st.Kubeconfig)
	if st.FluxCLI != "" {
		fmt.Fprintf(stdout, "export PATH=%s:$PATH   # flux get helmreleases -A\n", filepath.Dir(st.FluxCLI))
	}
	fmt.Fprintf(stdout, "# API server %s\n# fleet repo %s\n# chart repo %s\n# logs       %s\n",
		st.APIServer, st.FleetURL, st.ChartRepoURL, st.LogDir)
	if n := st.Node; n != nil {
		// Pod and Service addresses exist only inside the node's network namespace.
		fmt.Fprintf(stdout, "# node       %s %s in network namespace %s (nsenter --net=/run/netns/%s curl http://<cluster IP>/)\n# images     %s\n",
			n.Name, n.IP, n.Netns, n.Netns, strings.Join(n.Images, " "))
		if n.IngressURL != "" {
			port := n.IngressURL[strings.LastIndex(n.IngressURL, ":")+1:]
			fmt.Fprintf(stdout, "# shops      %s (ingress): curl http://<store>.stores.localhost:%s/\n", n.IngressURL, port)
		}
	}
}

// up starts `serve` as a detached process (its own session, so it outlives the
// shell and make) and waits until the environment is ready.
func up(ctx context.Context, dir string, stdout io.Writer) error {
	if pid := supervisor(dir); pid != 0 {
		st, err := testenv.ReadState(dir)
		if err == nil {
			fmt.Fprintf(stdout, "# already up (pid %d)\n", pid)
			printUse(stdout, st)
			return nil
		}
		return fmt.Errorf("an environment is starting in %s (pid %d); run down first", dir, pid)
	}
	sup, err := startSupervisor(dir, &syscall.SysProcAttr{Setsid: true}, stdout)
	if err != nil {
		return err
	}
	st, err := sup.waitReady(ctx.Done())
	if errors.Is(err, errStopRequested) {
		_ = sup.cmd.Process.Signal(syscall.SIGTERM)
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	printUse(stdout, st)
	return nil
}

// supervisorProc is a `serve` process this command started and waits for.
type supervisorProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process exited and was reaped
	err  error         // its exit status; set before done is closed
}

// startSupervisor clears dir and starts `serve` for it with attr, which decides
// how the process relates to this one: up detaches it, dev ties it to itself.
func startSupervisor(dir string, attr *syscall.SysProcAttr, stdout io.Writer) (*supervisorProc, error) {
	if err := clearDir(dir); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "supervisor.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// The child has its own descriptor for the log once started.
	defer logf.Close()
	cmd := exec.Command(exe, "serve", "--dir", dir)
	cmd.Env = append(os.Environ(), selfEnv+"=1", testenv.MarkerEnv+"="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &supervisorProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	fmt.Fprintf(stdout, "# starting (pid %d, log %s); the first run builds the tools\n", cmd.Process.Pid, logPath)
	return s, nil
}

// errStopRequested is waitReady's answer when stop fired first.
var errStopRequested = errors.New("stop requested")

// waitReady waits until the environment has written its state (it is ready), the
// supervisor exited (it failed to start: the error carries its log) or stop fires.
func (s *supervisorProc) waitReady(stop <-chan struct{}) (testenv.State, error) {
	dir := filepath.Dir(s.log)
	for {
		if st, err := testenv.ReadState(dir); err == nil {
			return st, nil
		}
		select {
		case <-s.done:
			data, _ := os.ReadFile(s.log)
			return testenv.State{}, fmt.Errorf("the environment did not start (%v):\n%s", s.err, data)
		case <-stop:
			return testenv.State{}, errStopRequested
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// clearDir empties dir if it is an old environment's (or creates it).
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
			return fmt.Errorf("%s is not empty and not a test environment's directory; choose another --dir", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, marker), nil, 0o644)
}

// serve holds the environment until SIGTERM or SIGINT.
func serve(ctx context.Context, dir string, stdout io.Writer) error {
	if err := os.WriteFile(pidFile(dir), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stdout, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}
	opts := testenv.Options{Dir: dir, WithFluxCLI: true, Logf: logf}
	opts.Node, opts.NodeImages = nodeWanted(logf)
	e, err := testenv.Start(ctx, opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	logf("stopping")
	_ = os.Remove(filepath.Join(dir, "env.json"))
	err = e.Stop()
	if left := e.Leftovers(); len(left) > 0 {
		err = errors.Join(err, fmt.Errorf("left behind: %v", left))
	}
	if e.Node != nil {
		if left := e.Node.Leftovers(); len(left) > 0 {
			err = errors.Join(err, fmt.Errorf("node left behind: %v", left))
		}
	}
	logf("stopped (err=%v)", err)
	return err
}

func status(ctx context.Context, dir string, stdout io.Writer) error {
	pid := supervisor(dir)
	if pid == 0 {
		fmt.Fprintf(stdout, "down (%s)\n", dir)
		return nil
	}
	st, err := testenv.ReadState(dir)
	if err != nil {
		fmt.Fprintf(stdout, "starting (pid %d); see %s\n", pid, filepath.Join(dir, "supervisor.log"))
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := testenv.CheckAPIServer(cctx, st.Kubeconfig); err != nil {
		return fmt.Errorf("supervisor pid %d runs but the API server does not answer: %w", pid, err)
	}
	fmt.Fprintf(stdout, "# up (pid %d)\n", pid)
	printUse(stdout, st)
	return nil
}

// down stops the supervisor, which stops the components in order; anything still
// running from dir afterwards (e.g. the supervisor was killed with SIGKILL and a
// component outlived it) is killed and reported.
func down(dir string, stdout io.Writer) error {
	if pid := supervisor(dir); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(90 * time.Second)
		for supervisor(dir) != 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if supervisor(dir) != 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var killed []string
	for range 50 {
		left := testenv.ProcessesOf(dir)
		if len(left) == 0 {
			break
		}
		for _, p := range left {
			if syscall.Kill(p.PID, syscall.SIGKILL) == nil {
				killed = append(killed, fmt.Sprintf("%d: %s", p.PID, p.Cmd))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = os.Remove(pidFile(dir))
	_ = os.Remove(filepath.Join(dir, "env.json"))
	if len(killed) > 0 {
		return fmt.Errorf("stopped, but had to kill processes left behind:\n  %s", strings.Join(killed, "\n  "))
	}
	if left := testenv.ProcessesOf(dir); len(left) > 0 {
		return fmt.Errorf("processes still running from %s: %v", dir, left)
	}
	fmt.Fprintf(stdout, "down (%s)\n", dir)
	return nil
}

// selfEnv is set for the background `serve` process; the command's tests use it
// to run the test binary as the command.
const selfEnv = "STOREFLEET_TESTENV_SERVE"

// nodeWanted brings the worker node up when this machine can run it and its
// binaries are already built (`make node-tools`), so `make testenv` never starts
// a long build by surprise; STOREFLEET_NODE=0 turns it off, =1 requires it.
// STOREFLEET_NODE_IMAGES (space-separated images/ folders) are imported besides
// the node's own images; unset, the shops' images (testenv.ShopImages), so the
// stores `make dev` creates run.
func nodeWanted(logf func(string, ...any)) (bool, []string) {
	images := testenv.ShopImages
	if v, ok := os.LookupEnv("STOREFLEET_NODE_IMAGES"); ok {
		images = strings.Fields(v)
	}
	switch os.Getenv("STOREFLEET_NODE") {
	case "0":
		return false, nil
	case "1":
		return true, images
	}
	if err := testenv.NodeHostReady(); err != nil {
		logf("no worker node: %v", err)
		return false, nil
	}
	root, err := testenv.RepoRoot()
	if err != nil || !testenv.NodeToolsBuilt(root) {
		logf("no worker node: its binaries are not built (make node-tools)")
		return false, nil
	}
	return true, images
}
