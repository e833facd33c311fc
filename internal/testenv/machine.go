package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Some of what a node changes is the machine's, not the node's, and is shared by
// every node running on it:
//   - sysctls the kubelet sets when it starts (setupKernelTunables; with
//     protectKernelDefaults it refuses to start on this machine's values instead).
//     They are not namespaced.
//   - paths the node's programs create whatever they are told (hostPaths), and
//     /run/netns, which `ip netns add` creates as a shared bind mount.
//
// The first node on the machine records how these were (in machineDir); each node
// registers itself there while it runs; the last one to stop puts them back.
// A registration whose process is gone (a killed test) is dropped, so a crash does
// not keep the machine's settings changed for ever: the next node to stop restores
// them.

// machineDir keeps that record. /run is emptied at boot, as the state it records.
const machineDir = "/run/storefleet/node-machine"

var tunableKeys = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// hostPaths are created on the host by the node's programs: the kubelet's
// device-plugin socket (a constant of the device plugin API, not under
// --root-dir), the folder the kubelet links container logs into, the CNI
// library's result cache, containerd's shim socket folder, and /run/netns.
// Listed deepest first.
var hostPaths = []string{
	"/var/lib/kubelet/device-plugins/kubelet.sock", "/var/lib/kubelet/device-plugins", "/var/lib/kubelet",
	"/var/log/containers", "/var/lib/cni/results", "/var/lib/cni", "/run/containerd/s", "/run/containerd",
	netnsDir,
}

// machineRecord is how the machine was before the first node.
type machineRecord struct {
	Sysctls map[string]string `json:"sysctls"`
	// Existed are the hostPaths present before; NetnsMounted says whether
	// /run/netns was already a mount point.
	Existed      []string `json:"existed"`
	NetnsMounted bool     `json:"netnsMounted"`
}

type machineUse struct{ id string }

func lockMachine() (*os.File, error) {
	if err := os.MkdirAll(filepath.Join(machineDir, "users"), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(machineDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// liveUsers returns the registered nodes whose process still runs. A node whose
// process is gone (a test binary killed by a timeout or SIGKILL, which runs no
// clean-up) is swept here, so the next node on the machine removes what it left.
func liveUsers() []string {
	ents, _ := os.ReadDir(filepath.Join(machineDir, "users"))
	var live []string
	for _, ent := range ents {
		p := filepath.Join(machineDir, "users", ent.Name())
		data, err := os.ReadFile(p)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		pid, perr := strconv.Atoi(lines[0])
		if err != nil || perr != nil || syscall.Kill(pid, 0) != nil {
			if len(lines) == 2 {
				sweepStaleNode(ent.Name(), lines[1])
			}
			_ = os.Remove(p)
			continue
		}
		live = append(live, ent.Name())
	}
	return live
}

// sweepStaleNode removes what a node whose process died left: its containers'
// processes and shims, its mounts, cgroups and network namespace. Its folder
// stays (it holds the logs).
func sweepStaleNode(id, dir string) {
	for _, cg := range cgroupDirs("/storefleet-" + id) {
		killCgroup(cg)
	}
	for _, p := range processesMentioning(dir) {
		if pid, err := strconv.Atoi(strings.SplitN(p, ":", 2)[0]); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, p := range ProcessesOf(filepath.Dir(dir)) {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	_ = unmountUnder(dir)
	for _, cg := range cgroupDirs("/storefleet-" + id) {
		_ = removeCgroupTree(cg)
	}
	_ = (&netns{name: "storefleet-" + id, path: filepath.Join(netnsDir, "storefleet-"+id)}).delete()
	_ = removeSandboxTraces(dir, "storefleet-"+id, nil)
}

// useMachine registers node id (its folder dir), recording the machine's state
// if it is the first.
func useMachine(id, dir string) (*machineUse, error) {
	lock, err := lockMachine()
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	rec := filepath.Join(machineDir, "record.json")
	live := liveUsers()
	if r, err := readMachineRecord(); err == nil && len(live) == 0 {
		// The last node died without putting the machine back: do it now, so
		// what is recorded below is the machine's own state again.
		_ = restoreMachine(r)
	}
	if _, err := os.Stat(rec); err != nil || len(live) == 0 {
		r := machineRecord{Sysctls: map[string]string{}, NetnsMounted: isMountPoint(netnsDir)}
		for _, k := range tunableKeys {
			v, err := os.ReadFile(filepath.Join("/proc/sys", k))
			if err != nil {
				return nil, err
			}
			r.Sysctls[k] = strings.TrimSpace(string(v))
		}
		for _, p := range hostPaths {
			if _, err := os.Lstat(p); err == nil {
				r.Existed = append(r.Existed, p)
			}
		}
		data, _ := json.Marshal(r)
		if err := os.WriteFile(rec, data, 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(machineDir, "users", id), []byte(strconv.Itoa(os.Getpid())+"\n"+dir), 0o644); err != nil {
		return nil, err
	}
	return &machineUse{id: id}, nil
}

func readMachineRecord() (machineRecord, error) {
	var r machineRecord
	data, err := os.ReadFile(filepath.Join(machineDir, "record.json"))
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(data, &r)
}

// release unregisters the node; the last node puts the machine back as recorded.
func (m *machineUse) release() error {
	lock, err := lockMachine()
	if err != nil {
		return err
	}
	defer lock.Close()
	_ = os.Remove(filepath.Join(machineDir, "users", m.id))
	if len(liveUsers()) > 0 {
		return nil
	}
	r, err := readMachineRecord()
	if err != nil {
		return err
	}
	if err := restoreMachine(r); err != nil {
		return err
	}
	if err := os.RemoveAll(machineDir); err != nil {
		return err
	}
	_ = os.Remove(filepath.Dir(machineDir)) // only if nothing else is in it
	return nil
}

// restoreMachine writes back the recorded sysctls and removes the hostPaths that
// did not exist before the first node.
func restoreMachine(r machineRecord) error {
	var errs []error
	for k, v := range r.Sysctls {
		errs = append(errs, os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644))
	}
	existed := map[string]bool{}
	for _, p := range r.Existed {
		existed[p] = true
	}
	for _, p := range hostPaths {
		if existed[p] {
			continue
		}
		if p == netnsDir && !r.NetnsMounted && isMountPoint(p) {
			if ents, _ := os.ReadDir(p); len(ents) == 0 {
				errs = append(errs, unix.Unmount(p, unix.MNT_DETACH))
			}
		}
		if st, err := os.Lstat(p); err == nil {
			if st.IsDir() {
				if err := syscall.Rmdir(p); err != nil && !errors.Is(err, syscall.ENOTEMPTY) {
					errs = append(errs, fmt.Errorf("rmdir %s: %w", p, err))
				}
			} else {
				errs = append(errs, os.Remove(p))
			}
		}
	}
	return errors.Join(errs...)
}

// leftovers lists the machine state a node left changed, when no node runs any
// more (while one does, the shared state is legitimately changed).
func (m *machineUse) leftovers() []string {
	if m == nil {
		return nil
	}
	if _, err := os.Stat(machineDir); err == nil {
		lock, err := lockMachine()
		if err != nil {
			return []string{err.Error()}
		}
		defer lock.Close()
		if len(liveUsers()) > 0 {
			return nil
		}
		return []string{"machine record " + machineDir + " left: the last node did not restore the machine"}
	}
	return nil
}

// isMountPoint reports whether p is a mount point (its own entry in mountinfo).
func isMountPoint(p string) bool {
	for _, m := range mountsUnder(p) {
		if m == p {
			return true
		}
	}
	return false
}

// NodesRunning is the number of nodes running on this machine (in any process),
// for a test that compares the host before and after its own node: the shared
// state is legitimately changed while another node runs.
func NodesRunning() int {
	if _, err := os.Stat(machineDir); err != nil {
		return 0
	}
	lock, err := lockMachine()
	if err != nil {
		return 0
	}
	defer lock.Close()
	return len(liveUsers())
}
