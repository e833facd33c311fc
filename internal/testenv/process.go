package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one control-plane component running as a child in its own process
// group, with its output in logs/<name>.log.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // set before done is closed
}

// startProcess starts bin with args. Each component gets its own process group so
// Stop can signal the whole group, and Pdeathsig so a test binary killed by a
// timeout or SIGKILL does not leave the control plane running.
func startProcess(name, bin string, args, env []string, logDir string) (*process, error) {
	env = append(env, MarkerEnv+"="+filepath.Dir(logDir))
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "# %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	pgid := p.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, pgid)
		}
	}
	// Anything else left in the group (there should be nothing) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// tail returns the last lines of the component's log, for error messages.
func (p *process) tail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// errExited reports that a component died while we waited for it.
func (p *process) errExited() error {
	return fmt.Errorf("%s exited: %v; last log lines (%s):\n%s", p.name, p.err, p.logPath, p.tail(15))
}

// waitHTTP polls url until check accepts the response, the process exits or ctx ends.
func waitHTTP(ctx context.Context, p *process, client *http.Client, url string) error {
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() {
			return p.errExited()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w; last log lines (%s):\n%s", p.name, url, ctx.Err(), p.logPath, p.tail(15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct free loopback ports. Another process can take one
// between here and the component binding it; Start retries a component whose log
// says its address is in use.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portClash reports whether a failed start was a lost race for a port.
func portClash(p *process, err error) bool {
	if err == nil || p == nil {
		return false
	}
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(p.tail(40), "address already in use")
}

// MarkerEnv is set in the environment of every component (and of the CLI's
// supervisor) to the environment's directory. It is how leftovers are found: a
// marker no user shell carries, unlike $KUBECONFIG or a path on a command line.
const MarkerEnv = "STOREFLEET_TESTENV_DIR"

// Leftovers lists processes still running that belong to this environment, as
// "pid: command". After Stop it must be empty.
func (e *Env) Leftovers() []string {
	var out []string
	for _, p := range ProcessesOf(e.Dir) {
		out = append(out, fmt.Sprintf("%d: %s", p.PID, p.Cmd))
	}
	return out
}

// ProcessInfo is a running process found by ProcessesOf.
type ProcessInfo struct {
	PID int
	Cmd string
}

// ProcessesOf lists running processes (other than this one) whose environment has
// MarkerEnv=dir.
func ProcessesOf(dir string) []ProcessInfo {
	marker := []byte(MarkerEnv + "=" + dir + "\x00")
	entries, _ := os.ReadDir("/proc")
	var found []ProcessInfo
	self := os.Getpid()
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err != nil || !bytes.Contains(env, marker) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat")); err == nil && zombie(stat) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		cmd := strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
		found = append(found, ProcessInfo{PID: pid, Cmd: cmd})
	}
	return found
}

// zombie reports whether /proc/PID/stat says the process has exited but was not
// reaped (state Z); it holds no resources and runs nothing.
func zombie(stat []byte) bool {
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
