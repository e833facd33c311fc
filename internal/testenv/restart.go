package testenv

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// StopAPIServer stops kube-apiserver (etcd, the controllers and everything else keep
// running), for tests of clients that must survive the API server going away.
// RestartAPIServer brings it back on the same address with the same flags.
func (e *Env) StopAPIServer() error {
	p := e.proc("kube-apiserver")
	if p == nil {
		return fmt.Errorf("kube-apiserver is not running")
	}
	return p.stop(15 * time.Second)
}

// RestartAPIServer starts kube-apiserver again with the flags (and so the port) it had,
// and waits until it is ready.
func (e *Env) RestartAPIServer(ctx context.Context) error {
	old := e.proc("kube-apiserver")
	if old == nil {
		return fmt.Errorf("kube-apiserver was never started")
	}
	if !old.exited() {
		return fmt.Errorf("kube-apiserver is still running (pid %d)", old.pid())
	}
	p, err := startProcess("kube-apiserver", old.cmd.Path, old.cmd.Args[1:], nil, e.LogDir)
	if err != nil {
		return err
	}
	e.mu.Lock()
	for i, q := range e.procs {
		if q == old {
			e.procs[i] = p
		}
	}
	e.mu.Unlock()
	hc, err := restHTTPClient(e)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return waitHTTP(rctx, p, hc, e.Config.Host+"/readyz")
}

func (e *Env) proc(name string) *process {
	e.mu.Lock()
	defer e.mu.Unlock()
	var found *process
	for _, p := range e.procs {
		if p.name == name {
			found = p // the newest one
		}
	}
	return found
}

func restHTTPClient(e *Env) (*http.Client, error) {
	hc, err := rest.HTTPClientFor(e.Config)
	if err != nil {
		return nil, err
	}
	hc.Timeout = 5 * time.Second
	return hc, nil
}

// StopComponent stops one component (e.g. "helm-controller", so objects a benchmark
// creates stay as created); the others keep running. It stays stopped.
func (e *Env) StopComponent(name string) error {
	p := e.proc(name)
	if p == nil {
		return fmt.Errorf("no component %q", name)
	}
	return p.stop(15 * time.Second)
}

// RestartComponent starts a Flux controller that StopComponent stopped again, with
// the flags (and so the ports) it had, and waits until its /readyz answers.
func (e *Env) RestartComponent(ctx context.Context, name string) error {
	old := e.proc(name)
	if old == nil {
		return fmt.Errorf("no component %q", name)
	}
	if !old.exited() {
		return fmt.Errorf("%s is still running (pid %d)", name, old.pid())
	}
	var health string
	for _, a := range old.cmd.Args[1:] {
		if v, ok := strings.CutPrefix(a, "--health-addr="); ok {
			health = v
		}
	}
	if health == "" {
		return fmt.Errorf("%s has no --health-addr to wait on: only the Flux controllers restart this way", name)
	}
	// old.cmd.Env is os.Environ() and the component's own variables after it; exec
	// keeps the last value of a repeated one.
	p, err := startProcess(name, old.cmd.Path, old.cmd.Args[1:], old.cmd.Env, e.LogDir)
	if err != nil {
		return err
	}
	e.mu.Lock()
	for i, q := range e.procs {
		if q == old {
			e.procs[i] = p
		}
	}
	e.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return waitHTTP(rctx, p, http.DefaultClient, "http://"+health+"/readyz")
}
