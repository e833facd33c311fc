package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The node's fixed addresses. They exist only inside the node's own network
// namespace (and the Pods' namespaces behind its bridge), so every environment uses
// the same ones without clashing with another environment or with the host.
const (
	// NodeName is the Node object's name.
	NodeName = "storefleet-node"
	// nodeIP is the node's address, on the namespace's loopback device. The kubelet
	// listens on it, CoreDNS answers on it (it is the Pods' nameserver).
	nodeIP = "10.250.0.1"
	// serviceCIDR is kube-apiserver's --service-cluster-ip-range.
	serviceCIDR = "10.0.0.0/16"
	// podCIDR is the CNI bridge's range; its first address is the Pods' gateway.
	podCIDR = "10.244.0.0/24"
	// kubeletPort is the kubelet's port inside the namespace (the API server
	// reaches it through the egress proxy).
	kubeletPort = 10250
	// StorageClassName is the default StorageClass the node's provisioner serves.
	StorageClassName = "local-path"
	// cniBridge is the bridge device's name inside the namespace.
	cniBridge = "sfbr0"
)

// Standard images every node has: the Pod sandbox, and a shell (Debian's
// busybox) for tests' own Pods. Built by images/build.sh.
var nodeBaseImages = []string{"pause", "busybox"}

// NodeTools are the node's programs: those built by hack/tools and those the
// Debian packages `make deps` installs provide.
type NodeTools struct {
	Kubelet, KubeScheduler, KubeProxy, CoreDNS   string
	Containerd, Ctr, Runc, Nsenter, IP, Iptables string
	CNIBinDir                                    string
}

// nodeToolNames are the hack/tools folders the node needs.
var nodeToolNames = []string{"kubernetes-node", "coredns"}

// nodePackages maps each host program the node needs to the Debian package that
// provides it (what `make deps` installs).
var nodePackages = map[string]string{
	"containerd":              "containerd",
	"containerd-shim-runc-v2": "containerd",
	"ctr":                     "containerd",
	"runc":                    "runc",
	"iptables":                "iptables",
	"nsenter":                 "util-linux",
	"ip":                      "iproute2",
}

// cniBinDir is where Debian's containernetworking-plugins puts the plugins.
const cniBinDir = "/usr/lib/cni"

// NodeHostReady reports why this machine cannot run the node, or nil: the node
// needs root (network namespaces, cgroups, mounts) and the Debian packages.
func NodeHostReady() error {
	if os.Geteuid() != 0 {
		return errors.New("testenv node: needs root (network namespaces, cgroups and mounts)")
	}
	var missing []string
	for prog, pkg := range nodePackages {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", prog, pkg))
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			missing = append(missing, fmt.Sprintf("%s/%s (Debian package containernetworking-plugins)", cniBinDir, plugin))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("testenv node: missing %s; run `make deps`", strings.Join(missing, ", "))
	}
	return nil
}

// NodeToolsBuilt reports whether the node's hack/tools binaries are already in
// this machine's cache (without building them): the CLI brings the node up only
// then, so `make testenv` never starts a long build by surprise.
func NodeToolsBuilt(root string) bool {
	for _, name := range nodeToolNames {
		dir := filepath.Join(root, "hack/tools", name)
		cmd := exec.Command("bash", "-c", `set -e; cd "$1"; v=$(sed -n 's/^# version: *//p' build.sh | head -n 1); h=$(cat build.sh go.mod $(ls go.sum 2>/dev/null) | sha256sum | cut -c1-12); r=${STOREFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/storefleet}/bin; test -f "$r/$2-${v:-unversioned}-$h/.complete"`, "-", dir, name)
		if cmd.Run() != nil {
			return false
		}
	}
	return true
}

// FindNodeTools builds (once per machine) and locates the node's programs.
func FindNodeTools(ctx context.Context, root string) (*NodeTools, error) {
	if err := NodeHostReady(); err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	for _, n := range nodeToolNames {
		d, err := ToolDir(ctx, root, n)
		if err != nil {
			return nil, err
		}
		dirs[n] = d
	}
	t := &NodeTools{
		Kubelet:       filepath.Join(dirs["kubernetes-node"], "kubelet"),
		KubeScheduler: filepath.Join(dirs["kubernetes-node"], "kube-scheduler"),
		KubeProxy:     filepath.Join(dirs["kubernetes-node"], "kube-proxy"),
		CoreDNS:       filepath.Join(dirs["coredns"], "coredns"),
		CNIBinDir:     cniBinDir,
	}
	for prog, dst := range map[string]*string{"containerd": &t.Containerd, "ctr": &t.Ctr, "runc": &t.Runc,
		"nsenter": &t.Nsenter, "ip": &t.IP, "iptables": &t.Iptables} {
		p, err := exec.LookPath(prog)
		if err != nil {
			return nil, err
		}
		*dst = p
	}
	return t, nil
}

// Image is a container image built by images/build.sh.
type Image struct {
	Name string // the images/ folder
	Ref  string // localhost/storefleet/...
	Tar  string // docker-archive tarball
	// BuildSeconds is how long its (cached) build took on this machine.
	BuildSeconds int
}

// BuildImage builds (once per machine) the image images/<name> describes.
func BuildImage(ctx context.Context, root, name string) (Image, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "images/build.sh"), name)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Image{}, fmt.Errorf("testenv: building image %q with images/build.sh failed (%v):\n%s", name, err, lastLines(stderr.String(), 30))
	}
	dir := strings.TrimSpace(stdout.String())
	ref, err := os.ReadFile(filepath.Join(dir, "ref"))
	if err != nil {
		return Image{}, err
	}
	secs, _ := os.ReadFile(filepath.Join(dir, "seconds"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(secs)))
	return Image{Name: name, Ref: strings.TrimSpace(string(ref)), Tar: filepath.Join(dir, "image.tar"), BuildSeconds: n}, nil
}

// Node is the environment's worker node: containerd, the CNI bridge, kubelet and
// kube-proxy inside a network namespace of its own, CoreDNS on the node's address,
// kube-scheduler and the volume provisioner beside the control plane.
type Node struct {
	Name string
	// IP is the node's address; it exists only inside Netns.
	IP string
	// Netns is the name of the node's network namespace (ip netns).
	Netns string
	// Dir holds everything the node writes: containerd's root and state, the
	// kubelet's root, Pod logs, volumes, CNI state.
	Dir string
	// ContainerdSocket is containerd's API (ctr -a ... -n k8s.io).
	ContainerdSocket string
	// CgroupRoot is the cgroup every Pod runs under, in each hierarchy.
	CgroupRoot string
	// Images are the images imported into the node's containerd.
	Images []Image
	// IngressURL is the node's ingress controller as the host's loopback sees it
	// (http://127.0.0.1:PORT): with the store's host as the request's Host, e.g.
	// curl http://<store>.stores.localhost:PORT/ (curl sends *.localhost to loopback).
	IngressURL string

	Tools *NodeTools

	id        string
	ns        *netns
	egress    *connectProxy
	egressCfg string
	apiFwd    *forwarder
	ingress   *ingressRouter
	volumes   *volumeProvisioner
	procs     []*process
	machine   *machineUse
	netName   string
	stopOnce  sync.Once
	stopErr   error
	mu        sync.Mutex
	env       *Env
	startedAt time.Time
	// removedContainers are the containers tear-down deleted (their CNI caches go).
	removedContainers []string
}

// prepareNode runs before kube-apiserver starts: it creates the node's network
// namespace and the egress proxy kube-apiserver is configured with, since the API
// server reaches the kubelet only through it.
func (e *Env) prepareNode(ctx context.Context) error {
	t, err := FindNodeTools(ctx, e.root)
	if err != nil {
		return err
	}
	idb := make([]byte, 4)
	if _, err := rand.Read(idb); err != nil {
		return err
	}
	id := hex.EncodeToString(idb)
	n := &Node{
		Name: NodeName, IP: nodeIP, Netns: "storefleet-" + id, Dir: filepath.Join(e.Dir, "node"),
		CgroupRoot: "/storefleet-" + id, Tools: t, id: id, netName: "storefleet-" + id, env: e,
	}
	n.ContainerdSocket = filepath.Join(n.Dir, "containerd.sock")
	e.Node = n
	// Before anything of the node touches the host.
	if n.machine, err = useMachine(n.id, n.Dir); err != nil {
		return err
	}
	for _, d := range []string{"containerd", "kubelet", "pod-logs", "volumes", "cni/net.d", "cni/ipam", "coredns", "run"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if n.ns, err = createNetns(n.Netns, n.IP, serviceCIDR); err != nil {
		return err
	}
	sock := filepath.Join(n.Dir, "egress.sock")
	if n.egress, err = newConnectProxy(sock, n.ns); err != nil {
		return err
	}
	n.egressCfg = filepath.Join(n.Dir, "egress-selector.yaml")
	return os.WriteFile(n.egressCfg, []byte(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: `+sock+"\n"), 0o644)
}

// nodeControllers are the kube-controller-manager controllers a node adds: the
// node lifecycle controller takes the not-ready taint off once the kubelet reports
// Ready (nothing is scheduled before), and the persistent volume binder binds a
// claim to the volume the provisioner made for it.
var nodeControllers = []string{"nodelifecycle", "persistentvolume-binder"}

// kcmControllers are the controllers kube-controller-manager runs here.
func (e *Env) kcmControllers() []string {
	if e.Node == nil {
		return kcmControllers
	}
	return append(append([]string(nil), kcmControllers...), nodeControllers...)
}

// apiServerNodeArgs are kube-apiserver's flags for talking to the node: through the
// egress proxy, authenticated to the kubelet with the admin certificate.
func (e *Env) apiServerNodeArgs(p *pki) []string {
	if e.Node == nil {
		return nil
	}
	return []string{
		"--egress-selector-config-file=" + e.Node.egressCfg,
		"--kubelet-client-certificate=" + p.AdminCert,
		"--kubelet-client-key=" + p.AdminKey,
		"--kubelet-preferred-address-types=InternalIP",
	}
}

// startNode brings the node up once the control plane runs and waits until the
// Node is Ready, CoreDNS answers and the provisioner's StorageClass exists.
func (e *Env) startNode(ctx context.Context, p *pki, images []string) error {
	n := e.Node
	n.startedAt = time.Now()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(e.Config.Host, "https://"))
	if err != nil {
		return err
	}
	// The API server listens on the host's loopback; inside the namespace the same
	// address (so the same kubeconfig and certificate names) is a forwarder.
	l, err := n.ns.Listen(net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("node: API forwarder in the namespace: %w", err)
	}
	n.apiFwd = newForwarder(l, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	})

	type built struct {
		img Image
		err error
	}
	names := append(append([]string(nil), nodeBaseImages...), images...)
	ch := make(chan built, len(names))
	for _, name := range names {
		go func() { img, err := BuildImage(ctx, e.root, name); ch <- built{img, err} }()
	}
	byName := map[string]Image{}
	var errs []error
	for range names {
		b := <-ch
		if b.err != nil {
			errs = append(errs, b.err)
			continue
		}
		byName[b.img.Name] = b.img
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, name := range names {
		n.Images = append(n.Images, byName[name])
	}

	if err := n.writeConfigs(e, p); err != nil {
		return err
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	e.phase("node: containerd ready", n.startedAt)
	if err := n.importImages(ctx); err != nil {
		return err
	}
	e.phase("node: images imported", n.startedAt)
	if err := createCgroup(n.CgroupRoot); err != nil {
		return err
	}
	if err := n.startKubelet(ctx); err != nil {
		return err
	}
	e.phase("node: Ready", n.startedAt)
	if err := n.startServices(ctx); err != nil {
		return err
	}
	e.phase("node: scheduler, kube-proxy, CoreDNS, provisioner ready", n.startedAt)
	return nil
}

func (n *Node) path(parts ...string) string {
	return filepath.Join(append([]string{n.Dir}, parts...)...)
}

// writeConfigs writes containerd's, the CNI's, the kubelet's, kube-proxy's,
// CoreDNS's and the provisioner's configuration. Every path they name is under
// n.Dir, so tear-down knows what is the node's.
func (n *Node) writeConfigs(e *Env, p *pki) error {
	pause := n.Images[0].Ref
	files := map[string]string{
		// version 2 is containerd 1.6's format. restrict_oom_score_adj: root here
		// lacks CAP_SYS_RESOURCE, and without it every container start fails
		// writing a lower oom_score_adj. netns_mounts_under_state_dir keeps the
		// Pods' network namespace mounts under n.Dir instead of /run/netns. The opt
		// plugin and runc's state root default to /opt/containerd and
		// /run/containerd/runc.
		"containerd/config.toml": fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %[3]q
[ttrpc]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[6]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[8]q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
`, n.path("containerd/root"), n.path("containerd/state"), n.ContainerdSocket, n.path("containerd/opt"),
			pause, n.path("run/runc"), n.Tools.CNIBinDir, n.path("cni/net.d")),

		// ipMasq off: Pods talk only to each other, the node and Services. The
		// Services' rules masquerade (kube-proxy masqueradeAll) so a reply from a
		// Pod on the same bridge comes back through the node and is un-NATed.
		"cni/net.d/10-storefleet.conflist": fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.netName, cniBridge, n.path("cni/ipam"), podCIDR),

		// No search domains or nameservers of the host leak into Pods.
		"resolv.conf": "",

		// failCgroupV1/cgroupfs: this VM has cgroup v1 only. cgroupRoot puts every
		// Pod's cgroup under one per-environment cgroup that tear-down removes.
		// Anonymous access off: only clients with a certificate of the
		// environment's CA (the API server) reach it. Image GC off: the node's
		// images are imported, never pulled back. oomScoreAdj 0: lowering it needs
		// CAP_SYS_RESOURCE.
		"kubelet/config.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %q}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: %q
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
address: %s
port: %d
readOnlyPort: 0
healthzPort: 10248
healthzBindAddress: 127.0.0.1
clusterDomain: cluster.local
clusterDNS: [%s]
resolvConf: %q
podLogsDir: %q
oomScoreAdj: 0
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%%", "imagefs.available": "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerNode: true
localStorageCapacityIsolation: true
`, p.CACert, n.CgroupRoot, n.ContainerdSocket, n.IP, kubeletPort, n.IP, n.path("resolv.conf"), n.path("pod-logs")),

		// conntrack all zero: kube-proxy then leaves the host-wide nf_conntrack
		// sysctls alone. localhostNodePorts off: it would set route_localnet.
		"kube-proxy.yaml": fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
mode: iptables
clusterCIDR: %s
hostnameOverride: %s
bindAddress: %s
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {masqueradeAll: true, localhostNodePorts: false}
`, e.Kubeconfig, podCIDR, n.Name, n.IP),

		// No forward plugin: the node has no way out, and nothing in a store
		// resolves outside names.
		"coredns/Corefile": fmt.Sprintf(`.:53 {
  bind %s
  errors
  ready 127.0.0.1:8181
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig %s storefleet-testenv
    pods insecure
    fallthrough in-addr.arpa ip6.arpa
  }
  cache 5
}
`, n.IP, e.Kubeconfig),
	}
	for name, body := range files {
		if err := os.WriteFile(n.path(name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// startIn starts a node program inside the namespace (in == true) or beside the
// control plane.
func (n *Node) start(name, bin string, args []string, in bool) (*process, error) {
	if in {
		bin, args = n.ns.command(bin, args...)
	}
	p, err := startProcess(name, bin, args, nil, n.env.LogDir)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	return p, nil
}

func (n *Node) startContainerd(ctx context.Context) error {
	p, err := n.start("containerd", n.Tools.Containerd, []string{"--config", n.path("containerd/config.toml")}, true)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		if _, err := n.ctr(rctx, "version"); err == nil {
			return nil
		}
		if p.exited() {
			return p.errExited()
		}
		select {
		case <-rctx.Done():
			return fmt.Errorf("containerd did not answer on %s; last log lines (%s):\n%s", n.ContainerdSocket, p.logPath, p.tail(15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ctr runs containerd's CLI against the node's containerd, in the namespace
// Kubernetes' images and containers live in.
func (n *Node) ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, n.Tools.Ctr, append([]string{"--address", n.ContainerdSocket, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ImportImage builds images/<name> if needed and imports it into the node.
func (n *Node) ImportImage(ctx context.Context, name string) (Image, error) {
	img, err := BuildImage(ctx, n.env.root, name)
	if err != nil {
		return Image{}, err
	}
	if _, err := n.ctr(ctx, "images", "import", img.Tar); err != nil {
		return Image{}, err
	}
	n.mu.Lock()
	n.Images = append(n.Images, img)
	n.mu.Unlock()
	return img, nil
}

func (n *Node) importImages(ctx context.Context) error {
	for _, img := range n.Images {
		if _, err := n.ctr(ctx, "images", "import", img.Tar); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) startKubelet(ctx context.Context) error {
	p, err := n.start("kubelet", n.Tools.Kubelet, []string{
		"--config=" + n.path("kubelet/config.yaml"),
		"--kubeconfig=" + n.env.Kubeconfig,
		"--root-dir=" + n.path("kubelet"),
		// Its serving certificate; the flag's default is not under --root-dir.
		"--cert-dir=" + n.path("kubelet/pki"),
		"--hostname-override=" + n.Name,
		"--node-ip=" + n.IP,
	}, true)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	var last string
	for {
		var node corev1.Node
		err := n.env.Client.Get(rctx, client.ObjectKey{Name: n.Name}, &node)
		if err == nil {
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady {
					if c.Status == corev1.ConditionTrue {
						return nil
					}
					last = c.Reason + ": " + c.Message
				}
			}
		} else {
			last = err.Error()
		}
		if p.exited() {
			return p.errExited()
		}
		select {
		case <-rctx.Done():
			return fmt.Errorf("node %s not Ready (%s); last kubelet log lines (%s):\n%s", n.Name, last, p.logPath, p.tail(20))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startServices starts kube-scheduler, kube-proxy, CoreDNS and the volume
// provisioner, and waits for each to be usable.
func (n *Node) startServices(ctx context.Context) error {
	e := n.env
	if _, err := n.start("kube-scheduler", n.Tools.KubeScheduler, []string{
		"--kubeconfig=" + e.Kubeconfig, "--leader-elect=false", "--secure-port=0",
	}, false); err != nil {
		return err
	}
	if _, err := n.start("kube-proxy", n.Tools.KubeProxy, []string{"--config=" + n.path("kube-proxy.yaml")}, true); err != nil {
		return err
	}
	dns, err := n.start("coredns", n.Tools.CoreDNS, []string{"-conf", n.path("coredns/Corefile")}, true)
	if err != nil {
		return err
	}
	if err := n.startVolumes(ctx); err != nil {
		return err
	}
	if err := n.startIngress(ctx); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return waitHTTP(rctx, dns, n.HTTPClient(), "http://127.0.0.1:8181/ready")
}

// HTTPClient returns a client whose connections are opened inside the node's
// network namespace: it reaches Pod IPs, Service cluster IPs and the node's
// address, which exist nowhere else.
func (n *Node) HTTPClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:       n.ns.DialContext,
		DisableKeepAlives: true,
	}}
}

// DialContext opens a connection from inside the node's network namespace.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.ns.DialContext(ctx, network, addr)
}

// Resolver returns a resolver that asks the node's CoreDNS, from inside the
// namespace, as a Pod's resolver does.
func (n *Node) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return n.ns.DialContext(ctx, network, net.JoinHostPort(n.IP, "53"))
	}}
}

// Memory reports the node's resident memory in bytes: each node program's RSS
// (by name; the containerd shims are counted under "shims"), and the Pods' —
// total_rss of the node's cgroup in the memory hierarchy (cgroup v1), page cache
// not included.
func (n *Node) Memory() (programs map[string]int64, pods int64) {
	programs = map[string]int64{}
	rss := func(pid int) int64 {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0
		}
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
		return 0
	}
	n.mu.Lock()
	for _, p := range n.procs {
		if !p.exited() {
			programs[p.name] += rss(p.pid())
		}
	}
	n.mu.Unlock()
	for _, p := range processesMentioning(n.Dir) {
		if strings.Contains(p, "containerd-shim") {
			pid, _ := strconv.Atoi(strings.SplitN(p, ":", 2)[0])
			programs["shims"] += rss(pid)
		}
	}
	for _, h := range cgroupHierarchies() {
		data, err := os.ReadFile(filepath.Join(h, n.CgroupRoot, "memory.stat"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "total_rss" {
				pods, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	return programs, pods
}

// ServeFlags are the gitops-api serve flags of this environment's cluster: with a
// node, Helm waits (so ready means serving) and the charts run on the images the
// node imported; without one, Helm must not wait (no Pod ever becomes ready).
// `make dev` passes them ({nodeFlags}), and so do the API tests on the node.
func (s State) ServeFlags() []string {
	if s.Node == nil {
		return []string{"--helm-wait", "off"}
	}
	flags := []string{"--helm-wait", "on"}
	var services []string
	for _, ref := range s.Node.Images {
		name := ref[strings.LastIndex(ref, "/")+1:]
		name, _, _ = strings.Cut(name, ":")
		if key, ok := serviceImageKeys[name]; ok {
			services = append(services, key+"="+ref)
		}
		if name == "medusa" {
			flags = append(flags, "--medusa-image", ref)
		}
	}
	if len(services) > 0 {
		sort.Strings(services)
		flags = append(flags, "--service-images", strings.Join(services, ","))
	}
	return flags
}

// ShopImages are the images the charts' stores run on (images/), by engine:
// WordPress and MariaDB, Medusa with PostgreSQL and Redis.
var ShopImages = []string{"mariadb", "wordpress", "postgresql", "redis", "medusa"}

// serviceImageKeys maps the images built here to the charts' images.<key> of
// their engine (gitops-api's --service-images).
var serviceImageKeys = map[string]string{
	"wordpress":  "woocommerce.wordpress",
	"mariadb":    "woocommerce.mysql",
	"postgresql": "medusa.postgresql",
	"redis":      "medusa.redis",
}
