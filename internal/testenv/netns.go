package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps the bind mounts that name network namespaces.
const netnsDir = "/run/netns"

// netns is a named network namespace the node lives in. It is the only network the
// node has: no veth pair or address is added to the host's interfaces. The host
// reaches into it, and it reaches the loopback control plane, only through the
// forwarders below, which this process opens on sockets created inside it.
type netns struct {
	name string
	path string
}

// createNetns makes a new network namespace with lo up and addr (a /32) on lo.
// The node's address lives on the namespace's own loopback device: the kubelet
// refuses a 127.0.0.0/8 node IP but accepts any other address of an interface, and
// Pods reach it through the CNI bridge's gateway route like any node address.
//
// routes are the namespace's only routes besides its own addresses: the node has
// no default route (it has nowhere to go), yet a connection from the node to a
// Service's cluster IP needs a route before kube-proxy's OUTPUT rule rewrites the
// destination to a Pod (which the bridge then routes).
func createNetns(name, addr string, routes ...string) (*netns, error) {
	if err := run("ip", "netns", "add", name); err != nil {
		return nil, err
	}
	ns := &netns{name: name, path: filepath.Join(netnsDir, name)}
	var cmds [][]string
	for _, args := range [][]string{
		{"-n", name, "link", "set", "lo", "up"},
		{"-n", name, "addr", "add", addr + "/32", "dev", "lo"},
	} {
		cmds = append(cmds, args)
	}
	for _, r := range routes {
		cmds = append(cmds, []string{"-n", name, "route", "add", r, "dev", "lo", "src", addr})
	}
	for _, args := range cmds {
		if err := run("ip", args...); err != nil {
			_ = ns.delete()
			return nil, err
		}
	}
	// Forwarding between the CNI bridge and the Service rules is the node's own
	// setting: net.ipv4.ip_forward is per network namespace, so the host's stays
	// as it was.
	if err := ns.sysctl("net.ipv4.ip_forward", "1"); err != nil {
		_ = ns.delete()
		return nil, err
	}
	return ns, nil
}

// sysctl writes a per-namespace sysctl from inside the namespace (/proc/sys/net is
// the view of the network namespace of the writing thread).
func (ns *netns) sysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return ns.do(func() error { return os.WriteFile(path, []byte(value), 0o644) })
}

// delete removes the namespace: the CNI bridge, the Pods' veth ends and every
// iptables rule kube-proxy wrote in it go with it.
func (ns *netns) delete() error {
	if _, err := os.Stat(ns.path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return run("ip", "netns", "delete", ns.name)
}

// command returns a command that runs bin inside the namespace. nsenter enters the
// network namespace only and then execs bin (same pid), so the process keeps the
// host's mount namespace: kubelet's volume mounts and containerd's rootfs mounts
// must see each other, which `ip netns exec` (a private mount namespace each)
// would break.
func (ns *netns) command(bin string, args ...string) (string, []string) {
	return "nsenter", append([]string{"--net=" + ns.path, "--", bin}, args...)
}

// do runs fn on an OS thread switched into the namespace. A socket created by fn
// belongs to the namespace for its whole life, whichever thread uses it later. If
// the thread cannot be switched back it stays locked, so Go ends it rather than
// reusing it for other goroutines.
func (ns *netns) do(fn func() error) error {
	type result struct{ err error }
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		back, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err}
			return
		}
		defer back.Close()
		target, err := os.Open(ns.path)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{fmt.Errorf("setns %s: %w", ns.path, err)}
			return
		}
		ferr := fn()
		if err := unix.Setns(int(back.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{errors.Join(ferr, fmt.Errorf("setns back: %w", err))}
			return // thread stays locked: it dies with this goroutine
		}
		runtime.UnlockOSThread()
		ch <- result{ferr}
	}()
	return (<-ch).err
}

// Listen opens a TCP listener inside the namespace.
func (ns *netns) Listen(addr string) (net.Listener, error) {
	var l net.Listener
	err := ns.do(func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// DialContext dials from inside the namespace. addr must be an IP literal: name
// resolution could run on another thread, outside the namespace.
func (ns *netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.do(func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// forwarder copies connections accepted on l to connections dial opens.
type forwarder struct {
	l    net.Listener
	dial func(ctx context.Context) (net.Conn, error)
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]bool
}

func newForwarder(l net.Listener, dial func(ctx context.Context) (net.Conn, error)) *forwarder {
	f := &forwarder{l: l, dial: dial, open: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.serve()
	return f
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		in, err := f.l.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			out, err := f.dial(context.Background())
			if err != nil {
				in.Close()
				return
			}
			f.pipe(in, out)
		}()
	}
}

// pipe copies both ways until either side closes, then closes both.
func (f *forwarder) pipe(a, b net.Conn) {
	if !f.track(a, b) {
		a.Close()
		b.Close()
		return
	}
	var once sync.Once
	done := func() { once.Do(func() { a.Close(); b.Close() }) }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(a, b); done() }()
	go func() { defer wg.Done(); _, _ = io.Copy(b, a); done() }()
	wg.Wait()
	f.untrack(a, b)
}

func (f *forwarder) track(conns ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == nil {
		return false
	}
	for _, c := range conns {
		f.open[c] = true
	}
	return true
}

func (f *forwarder) untrack(conns ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range conns {
		delete(f.open, c)
	}
}

// Close stops accepting, closes every open connection and waits for the copies.
func (f *forwarder) Close() error {
	err := f.l.Close()
	f.mu.Lock()
	for c := range f.open {
		c.Close()
	}
	f.open = nil
	f.mu.Unlock()
	f.wg.Wait()
	return err
}

// connectProxy answers HTTP CONNECT on a Unix socket by dialing the asked address
// inside the namespace. kube-apiserver sends its traffic to nodes (kubelet logs,
// exec, port-forward; the nodes/proxy and services/proxy subresources) there
// (--egress-selector-config-file, egress "cluster"), since the node's address is
// routable only inside the namespace.
type connectProxy struct {
	*forwarder
}

func newConnectProxy(sock string, ns *netns) (*connectProxy, error) {
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	p := &connectProxy{forwarder: &forwarder{l: l, open: map[net.Conn]bool{}}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handle(in, ns)
			}()
		}
	}()
	return p, nil
}

func (p *connectProxy) handle(in net.Conn, ns *netns) {
	br := bufio.NewReader(in)
	req, err := http.ReadRequest(br)
	if err != nil {
		in.Close()
		return
	}
	if req.Method != http.MethodConnect {
		fmt.Fprintf(in, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		in.Close()
		return
	}
	out, err := ns.DialContext(context.Background(), "tcp", req.Host)
	if err != nil {
		fmt.Fprintf(in, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		in.Close()
		return
	}
	if _, err := fmt.Fprintf(in, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		in.Close()
		out.Close()
		return
	}
	// Bytes the client sent after its request head are already buffered.
	if n := br.Buffered(); n > 0 {
		buf, _ := br.Peek(n)
		if _, err := out.Write(buf); err != nil {
			in.Close()
			out.Close()
			return
		}
	}
	p.pipe(in, out)
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
