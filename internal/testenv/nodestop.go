package testenv

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stop takes the node down and removes every trace of it from the host: processes
// (the node's programs and containerd's shims), containers, mounts (overlay root
// file systems, Pod volumes, the Pods' network namespaces), the cgroups under
// CgroupRoot, the network namespace (with the bridge, the veths and kube-proxy's
// iptables rules in it) and the kernel settings the kubelet changed. It runs while
// the control plane still does, and is safe to call twice.
func (n *Node) stop() error {
	n.stopOnce.Do(func() {
		var errs []error
		n.mu.Lock()
		procs := append([]*process(nil), n.procs...)
		n.mu.Unlock()
		byName := map[string]*process{}
		for _, p := range procs {
			byName[p.name] = p
		}
		stopNamed := func(names ...string) {
			for _, name := range names {
				if p := byName[name]; p != nil {
					if err := p.stop(15 * time.Second); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
		if n.volumes != nil {
			errs = append(errs, n.volumes.Close())
		}
		stopNamed("kube-scheduler", "kube-proxy", "coredns", "kubelet")
		if p := byName["containerd"]; p != nil && !p.exited() {
			errs = append(errs, n.removeContainers())
		}
		stopNamed("containerd")
		errs = append(errs, n.sweep())
		if n.machine != nil {
			errs = append(errs, n.machine.release())
		}
		if n.apiFwd != nil {
			errs = append(errs, n.apiFwd.Close())
		}
		if n.ingress != nil {
			errs = append(errs, n.ingress.Close())
		}
		if n.egress != nil {
			errs = append(errs, n.egress.Close())
		}
		n.stopErr = errors.Join(errs...)
	})
	return n.stopErr
}

// removeContainers kills and deletes every container containerd runs for the
// node, so each shim exits (removing its socket) while containerd still answers.
func (n *Node) removeContainers() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := n.ctr(ctx, "containers", "list", "--quiet")
	if err != nil {
		return err
	}
	var errs []error
	n.removedContainers = strings.Fields(out)
	for _, id := range n.removedContainers {
		_, _ = n.ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id)
		// "ttrpc: closed": the shim exited with its killed task before answering
		// the delete; the task is gone all the same.
		if o, err := n.ctr(ctx, "tasks", "delete", "--force", id); err != nil && !strings.Contains(o, "not found") && !strings.Contains(o, "ttrpc: closed") {
			errs = append(errs, err)
		}
		if o, err := n.ctr(ctx, "containers", "delete", id); err != nil && !strings.Contains(o, "not found") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweep removes what the node's programs leave on the host once they are stopped.
func (n *Node) sweep() error {
	var errs []error
	// Processes still in the node's cgroups (a container whose shim died first).
	for _, dir := range cgroupDirs(n.CgroupRoot) {
		killCgroup(dir)
	}
	// Shims carry the environment's marker; after their containers are deleted
	// they exit on their own, so any left is killed.
	for _, p := range ProcessesOf(n.env.Dir) {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	errs = append(errs, unmountUnder(n.Dir))
	for _, dir := range cgroupDirs(n.CgroupRoot) {
		errs = append(errs, removeCgroupTree(dir))
	}
	if n.ns != nil {
		errs = append(errs, n.ns.delete())
	}
	// The kubelet links each container's log into /var/log/containers (a path it
	// does not let us change); the links point into n.Dir.
	if ents, err := os.ReadDir("/var/log/containers"); err == nil {
		for _, ent := range ents {
			p := filepath.Join("/var/log/containers", ent.Name())
			if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, n.Dir+"/") {
				errs = append(errs, os.Remove(p))
			}
		}
	}
	errs = append(errs, removeSandboxTraces(n.Dir, n.netName, n.removedContainers))
	return errors.Join(errs...)
}

// removeSandboxTraces removes what the node's Pod sandboxes leave outside dir when
// they are deleted without the CRI's own tear-down (always, here: containers are
// deleted through containerd): the CNI library's cached results under
// /var/lib/cni/results (<network>-<sandbox>-eth0 and cni-loopback-<sandbox>-lo)
// and the sockets of shims that were killed rather than told to exit, named
// /run/containerd/s/sha256(<containerd address>/k8s.io/<sandbox>). ids are known
// container ids; the sandboxes containerd's CRI recorded under dir are added.
func removeSandboxTraces(dir, netName string, ids []string) error {
	if ents, err := os.ReadDir(filepath.Join(dir, "containerd/root/io.containerd.grpc.v1.cri/sandboxes")); err == nil {
		for _, e := range ents {
			ids = append(ids, e.Name())
		}
	}
	var errs []error
	rm := func(p string) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	m, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", netName+"-*"))
	for _, p := range m {
		rm(p)
	}
	sock := filepath.Join(dir, "containerd.sock")
	for _, id := range ids {
		rm(filepath.Join("/var/lib/cni/results", "cni-loopback-"+id+"-lo"))
		sum := sha256.Sum256([]byte(sock + "/k8s.io/" + id))
		rm(filepath.Join("/run/containerd/s", hex.EncodeToString(sum[:])))
	}
	return errors.Join(errs...)
}

// Leftovers lists what of the node is still on the host; after Stop it is empty.
func (n *Node) Leftovers() []string {
	var out []string
	if _, err := os.Stat(filepath.Join(netnsDir, n.Netns)); err == nil {
		out = append(out, "network namespace "+n.Netns)
	}
	for _, m := range mountsUnder(n.Dir) {
		out = append(out, "mount "+m)
	}
	for _, dir := range cgroupDirs(n.CgroupRoot) {
		if _, err := os.Stat(dir); err == nil {
			out = append(out, "cgroup "+dir)
		}
	}
	for _, p := range ProcessesOf(n.env.Dir) {
		out = append(out, fmt.Sprintf("process %d: %s", p.PID, p.Cmd))
	}
	for _, p := range processesMentioning(n.Dir) {
		out = append(out, "process "+p)
	}
	if ents, err := os.ReadDir("/var/log/containers"); err == nil {
		for _, ent := range ents {
			p := filepath.Join("/var/log/containers", ent.Name())
			if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, n.Dir+"/") {
				out = append(out, "log link "+p)
			}
		}
	}
	if m, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", n.netName+"-*")); len(m) > 0 {
		out = append(out, "CNI results "+strings.Join(m, " "))
	}
	out = append(out, n.machine.leftovers()...)
	return out
}

// processesMentioning lists processes whose command line names a path under dir
// (containerd's shims name its socket), whatever their environment.
func processesMentioning(dir string) []string {
	var found []string
	ents, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, ent := range ents {
		if _, err := strconv.Atoi(ent.Name()); err != nil || ent.Name() == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), dir+"/") {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat")); err == nil && zombie(stat) {
			continue
		}
		found = append(found, ent.Name()+": "+strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
	}
	return found
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount at or below dir, deepest first, until none is
// left (a mount can hide another on the same point).
func unmountUnder(dir string) error {
	for range 10 {
		ms := mountsUnder(dir)
		if len(ms) == 0 {
			return nil
		}
		for _, m := range ms {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
	}
	if ms := mountsUnder(dir); len(ms) > 0 {
		return fmt.Errorf("node: still mounted: %s", strings.Join(ms, ", "))
	}
	return nil
}

// cgroupHierarchies lists the mount points of the host's cgroup hierarchies
// (v1 controllers, the named systemd one, and the unified v2 one if mounted).
func cgroupHierarchies() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, " - ")
		if i < 0 {
			continue
		}
		fields, tail := strings.Fields(line[:i]), strings.Fields(line[i+3:])
		if len(fields) >= 5 && len(tail) >= 1 && (tail[0] == "cgroup" || tail[0] == "cgroup2") {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out
}

// cgroupDirs is root's folder in every hierarchy.
func cgroupDirs(root string) []string {
	var out []string
	for _, h := range cgroupHierarchies() {
		out = append(out, filepath.Join(h, root))
	}
	return out
}

// createCgroup makes root in every v1 hierarchy (the kubelet requires its
// cgroupRoot to exist). cpuset needs its CPUs and memory nodes filled in before
// a child can hold a task, so they are copied from the parent.
func createCgroup(root string) error {
	for _, h := range cgroupHierarchies() {
		if strings.HasSuffix(h, "/unified") {
			continue
		}
		dir := filepath.Join(h, root)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// killCgroup SIGKILLs every process in dir and below.
func killCgroup(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
}

// removeCgroupTree removes dir and its children, deepest first (a cgroup folder is
// removed with rmdir once it holds no process, though it lists files).
func removeCgroupTree(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var last error
	for range 50 {
		last = nil
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				last = fmt.Errorf("rmdir %s: %w", d, err)
			}
		}
		if last == nil {
			return nil
		}
		// A killed process leaves its cgroup a moment after SIGKILL.
		killCgroup(dir)
		time.Sleep(100 * time.Millisecond)
	}
	return last
}
