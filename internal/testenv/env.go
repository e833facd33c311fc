package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/render"
)

const (
	// serviceClusterIP is the first address of --service-cluster-ip-range, the
	// kubernetes.default Service; it is in the serving certificate's SANs.
	serviceClusterIP = "10.0.0.1"
	fluxNamespace    = "flux-system"
)

// kcmControllers are the kube-controller-manager controllers a store's objects
// depend on. Without namespace and pvc-protection a deleted store namespace stays
// Terminating for ever; without resourcequota quotas are silently not enforced;
// the workload controllers create Pods so quota, LimitRange and Pod Security
// admission judge every store (Pods then stay Pending: no scheduler or kubelet).
var kcmControllers = []string{
	"namespace", "garbagecollector", "pvc-protection", "pv-protection", "resourcequota",
	"deployment", "replicaset", "statefulset", "daemonset", "job", "cronjob", "ttl-after-finished",
	"disruption", "endpointslice", "serviceaccount", "serviceaccount-token", "root-ca-cert-publisher",
	"clusterrole-aggregation", "podgc",
}

// Options configure Start. The zero value starts the environment for this checkout.
type Options struct {
	// Dir holds PKI, data, logs, the fleet repository and the chart repository.
	// Empty means a new temporary directory. Start never deletes it: logs outlive a
	// failed run (StartT and Main remove it when the tests passed).
	Dir string
	// Root is the storefleet checkout; empty means RepoRoot().
	Root string
	// ChartsDir holds chart folders (each with a Chart.yaml) served as the Helm
	// chart repository; empty means <Root>/charts. A missing folder serves an empty
	// repository.
	ChartsDir string
	// ClusterDir is the Flux configuration applied at start; empty means
	// <Root>/clusters/local.
	ClusterDir string
	// FleetSeedDir seeds the fleet repository's first commit; empty means
	// <Root>/fleet when it exists.
	FleetSeedDir string
	// WithFluxCLI also builds/locates the flux CLI (Env.Tools.Flux).
	WithFluxCLI bool
	// Node also runs a worker node (node.go): containerd, kubelet, kube-proxy,
	// CoreDNS in a network namespace of their own, kube-scheduler and a volume
	// provisioner, so Pods really run. Needs root and `make deps`; off by
	// default, so the cluster tests keep Pods Pending and start no shops.
	Node bool
	// NodeImages are images/ folders built and imported into the node besides
	// its own (pause, busybox).
	NodeImages []string
	// FluxShards runs that many sets of kustomize-controller and helm-controller,
	// as clusters/README.md ("Flux controller sharding") sets a cluster up: with
	// K > 1 the main ones watch only objects without render.FluxShardLabel, and
	// kustomize-controller-shard<i> and helm-controller-shard<i> (i = 1 … K-1)
	// only those labelled shard<i>; the environment's own shard publisher labels
	// the shard Kustomizations for K (render.ShardLayout.FluxShards). 0 or 1: one
	// set, no selector, as before. source-controller is never sharded.
	FluxShards render.FluxShards
	// HelmConcurrent and KustomizeConcurrent are helm-controller's and
	// kustomize-controller's --concurrent (reconciles at a time, per controller
	// shard). 0 takes $STOREFLEET_FLUX_HELM_CONCURRENT /
	// $STOREFLEET_FLUX_KUSTOMIZE_CONCURRENT when set, else the environment's
	// default (DefaultHelmConcurrent, DefaultKustomizeConcurrent), so one test
	// binary can be measured with different settings.
	HelmConcurrent, KustomizeConcurrent int
	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
}

// Env is a running environment.
type Env struct {
	Dir    string // everything the environment wrote
	LogDir string // one <component>.log per process

	// Kubeconfig is the path of an admin kubeconfig (client certificate in
	// system:masters): <Dir>/kubeconfig.
	Kubeconfig string
	Config     *rest.Config
	Client     client.Client

	// FleetURL is the fleet repository (git smart HTTP, push enabled);
	// FleetRepoPath is its bare repository on disk.
	FleetURL, FleetRepoPath string
	// ChartRepoURL is the Helm chart repository (index.yaml + packaged charts).
	ChartRepoURL string
	// SourceStorageURL is where source-controller serves artifacts.
	SourceStorageURL string

	Tools *Tools
	// Node is the worker node when Options.Node asked for one.
	Node *Node

	// Phases records when each start-up step finished, relative to the call.
	Phases []Phase

	opts     Options
	root     string
	procs    []*process // in start order
	git      *githttp.Server
	gitLog   *os.File
	charts   *http.Server
	chartDir string
	helmEnv  []string

	artifacts   *http.Server
	artifactDir string
	artifactURL string
	shardMu     sync.Mutex
	shardTrees  map[string]string // shard → tree hash last published
	// shardKustomizations are the shards whose Kustomization this Env applied.
	shardKustomizations map[string]bool

	stopOnce sync.Once
	stopErr  error
	mu       sync.Mutex
}

// Start builds missing binaries, then starts etcd, kube-apiserver,
// kube-controller-manager, the Flux CRDs and controllers, the fleet Git server and
// the chart repository, applies the cluster configuration and waits until Flux has
// applied the fleet's first commit. On error everything started is stopped.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	e := &Env{opts: opts}
	if err := e.resolveOptions(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = e.Stop()
			err = fmt.Errorf("%w\ncomponent logs: %s", err, e.LogDir)
		}
	}()

	t0 := time.Now()
	crdCh := make(chan crdResult, 1)
	go func() { d, err := crdDirs(ctx); crdCh <- crdResult{d, err} }()
	if e.Tools, err = FindTools(ctx, e.root, opts.WithFluxCLI); err != nil {
		return nil, err
	}
	if opts.Node {
		// Before the API server: it is configured with the node's egress proxy.
		if err := e.prepareNode(ctx); err != nil {
			return nil, err
		}
	}
	e.phase("tools ready", t0)
	p, err := newPKI(filepath.Join(e.Dir, "pki"))
	if err != nil {
		return nil, err
	}
	if err := e.startGit(ctx); err != nil {
		return nil, err
	}
	if err := e.startChartRepo(ctx); err != nil {
		return nil, err
	}
	etcdURL, err := e.startEtcd(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.startAPIServer(ctx, p, etcdURL); err != nil {
		return nil, err
	}
	e.phase("kube-apiserver ready at "+e.Config.Host, t0)
	crds := <-crdCh
	if crds.err != nil {
		return nil, crds.err
	}
	if err := e.prepareCluster(ctx, crds.dirs); err != nil {
		return nil, err
	}
	e.phase("Flux CRDs installed", t0)
	if err := e.startControllers(ctx, p); err != nil {
		return nil, err
	}
	e.phase("controllers ready", t0)
	if e.Node != nil {
		if err := e.startNode(ctx, p, opts.NodeImages); err != nil {
			return nil, err
		}
	}
	if err := e.startArtifacts(); err != nil {
		return nil, err
	}
	if err := e.applyCluster(ctx); err != nil {
		return nil, err
	}
	if err := e.writeState(); err != nil {
		return nil, err
	}
	e.phase("fleet applied", t0)
	e.logf("environment up; logs in %s", e.LogDir)
	return e, nil
}

// Phase is one start-up step and when it finished.
type Phase struct {
	Name  string
	After time.Duration
}

func (e *Env) phase(name string, t0 time.Time) {
	e.Phases = append(e.Phases, Phase{name, time.Since(t0)})
	e.logf("%s (%s)", name, since(t0))
}

type crdResult struct {
	dirs []string
	err  error
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }

func (e *Env) logf(format string, args ...any) {
	if e.opts.Logf != nil {
		e.opts.Logf(format, args...)
	}
}

func (e *Env) resolveOptions() error {
	if err := e.opts.FluxShards.Validate(); err != nil {
		return err
	}
	root := e.opts.Root
	if root == "" {
		r, err := RepoRoot()
		if err != nil {
			return err
		}
		root = r
	}
	e.root = root
	if e.opts.Dir == "" {
		d, err := os.MkdirTemp("", "storefleet-testenv-")
		if err != nil {
			return err
		}
		e.opts.Dir = d
	}
	abs, err := filepath.Abs(e.opts.Dir)
	if err != nil {
		return err
	}
	e.Dir = abs
	e.LogDir = filepath.Join(e.Dir, "logs")
	if e.opts.ChartsDir == "" {
		e.opts.ChartsDir = filepath.Join(root, "charts")
	}
	if e.opts.ClusterDir == "" {
		e.opts.ClusterDir = filepath.Join(root, "clusters", "local")
	}
	if e.opts.FleetSeedDir == "" {
		if st, err := os.Stat(filepath.Join(root, "fleet")); err == nil && st.IsDir() {
			e.opts.FleetSeedDir = filepath.Join(root, "fleet")
		}
	}
	return os.MkdirAll(e.LogDir, 0o755)
}

// startWithRetry starts a component on fresh ports, retrying when another process
// took one of them between freePorts and the bind.
func (e *Env) startWithRetry(ctx context.Context, name string, nports int,
	start func(ports []int) (*process, error), ready func(p *process, ports []int) error) (*process, []int, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(nports)
		if err != nil {
			return nil, nil, err
		}
		p, err := start(ports)
		if err != nil {
			return nil, nil, err
		}
		e.mu.Lock()
		e.procs = append(e.procs, p)
		e.mu.Unlock()
		err = ready(p, ports)
		if err == nil {
			return p, ports, nil
		}
		lastErr = err
		_ = p.stop(5 * time.Second)
		if !portClash(p, err) || ctx.Err() != nil {
			break
		}
		e.logf("%s: port taken, retrying", name)
	}
	return nil, nil, lastErr
}

func (e *Env) startEtcd(ctx context.Context) (string, error) {
	dataDir := filepath.Join(e.Dir, "etcd")
	var url string
	_, _, err := e.startWithRetry(ctx, "etcd", 2, func(ports []int) (*process, error) {
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		url = client
		_ = os.RemoveAll(dataDir)
		return startProcess("etcd", e.Tools.Etcd, []string{
			"--name=testenv", "--data-dir=" + dataDir,
			"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=testenv=" + peer,
			"--unsafe-no-fsync", "--log-level=warn",
		}, nil, e.LogDir)
	}, func(p *process, ports []int) error {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return waitHTTP(rctx, p, http.DefaultClient, url+"/health")
	})
	return url, err
}

func (e *Env) startAPIServer(ctx context.Context, p *pki, etcdURL string) error {
	var port int
	_, _, err := e.startWithRetry(ctx, "kube-apiserver", 1, func(ports []int) (*process, error) {
		port = ports[0]
		return startProcess("kube-apiserver", e.Tools.KubeAPIServer, append([]string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + p.ServingCert, "--tls-private-key-file=" + p.ServingKey,
			"--client-ca-file=" + p.CACert,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + p.SAPub,
			"--service-account-signing-key-file=" + p.SAKey,
			"--service-cluster-ip-range=" + serviceCIDR,
			"--authorization-mode=RBAC",
			// Required: the default reconciler refuses a loopback advertise address.
			"--endpoint-reconciler-type=none",
			// No token controller mounts tokens into Pods that never run.
			"--disable-admission-plugins=ServiceAccount",
			"--enable-priority-and-fairness=false",
			"--cert-dir=" + filepath.Join(e.Dir, "pki", "apiserver"),
		}, e.apiServerNodeArgs(p)...), nil, e.LogDir)
	}, func(proc *process, ports []int) error {
		if err := e.writeKubeconfig(p, fmt.Sprintf("https://127.0.0.1:%d", ports[0])); err != nil {
			return err
		}
		hc, err := adminHTTPClient(p)
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return waitHTTP(rctx, proc, hc, e.Config.Host+"/readyz")
	})
	if err != nil {
		return err
	}
	c, err := newClient(e.Config)
	if err != nil {
		return err
	}
	e.Client = c
	return nil
}

func adminHTTPClient(p *pki) (*http.Client, error) {
	cert, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}, nil
}

func (e *Env) writeKubeconfig(p *pki, server string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["storefleet-testenv"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM}
	cfg.Contexts["storefleet-testenv"] = &clientcmdapi.Context{Cluster: "storefleet-testenv", AuthInfo: "admin"}
	cfg.CurrentContext = "storefleet-testenv"
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, e.Kubeconfig); err != nil {
		return err
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 100, 200
	e.Config = rc
	return nil
}

// prepareCluster creates flux-system and installs the Flux CRDs.
func (e *Env) prepareCluster(ctx context.Context, crdDirs []string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNamespace}}
	if err := e.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", fluxNamespace, err)
	}
	return e.installCRDs(ctx, crdDirs)
}

func (e *Env) startControllers(ctx context.Context, p *pki) error {
	keys := e.opts.FluxShards.Keys()
	var wg sync.WaitGroup
	errs := make([]error, 4+2*len(keys))
	wg.Add(len(errs))
	go func() { defer wg.Done(); errs[0] = e.startKCM(ctx, p) }()
	fluxEnv := []string{"KUBECONFIG=" + e.Kubeconfig, "RUNTIME_NAMESPACE=" + fluxNamespace}
	common := func(ports []int) []string {
		return []string{
			"--watch-all-namespaces=true", "--enable-leader-election=false", "--events-addr=",
			fmt.Sprintf("--metrics-addr=127.0.0.1:%d", ports[0]),
			fmt.Sprintf("--health-addr=127.0.0.1:%d", ports[1]),
			"--log-level=info",
		}
	}
	flux := func(i int, name, bin string, nports int, extra func(ports []int) []string) {
		defer wg.Done()
		// Each controller gets a TMPDIR of its own: kustomize-controller removes
		// every /tmp/kustomization-* directory when it starts, taking them for
		// leftovers of its previous run, so with a shared /tmp a second environment
		// starting deleted the first one's build directories mid-build ("lstat
		// …/stores/local/<shard>: no such file or directory").
		tmp := filepath.Join(e.Dir, "tmp", name)
		if errs[i] = os.MkdirAll(tmp, 0o755); errs[i] != nil {
			return
		}
		env := append(append([]string(nil), fluxEnv...), "TMPDIR="+tmp)
		_, _, errs[i] = e.startWithRetry(ctx, name, nports, func(ports []int) (*process, error) {
			args := append(common(ports), extra(ports)...)
			return startProcess(name, bin, args, env, e.LogDir)
		}, func(proc *process, ports []int) error {
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			return waitHTTP(rctx, proc, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]))
		})
	}
	storage := filepath.Join(e.Dir, "source-storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return err
	}
	go flux(1, "source-controller", e.Tools.SourceController, 3, func(ports []int) []string {
		e.SourceStorageURL = fmt.Sprintf("http://127.0.0.1:%d", ports[2])
		return []string{
			"--storage-path=" + storage,
			fmt.Sprintf("--storage-addr=127.0.0.1:%d", ports[2]),
			fmt.Sprintf("--storage-adv-addr=127.0.0.1:%d", ports[2]),
		}
	})
	// A dependency that is not ready yet is retried after --requeue-dependency
	// (30 s by default); 1 s keeps a triggered reconcile of infrastructure and
	// stores close to the cost of the apply itself.
	// ExternalArtifact: the stores' shard Kustomizations apply the artifacts
	// gitops-api publishes (docs/design.md, "How Flux applies the stores").
	kustomizeArgs := []string{"--requeue-dependency=1s", "--feature-gates=ExternalArtifact=true",
		fmt.Sprintf("--concurrent=%d", concurrency(e.opts.KustomizeConcurrent, "STOREFLEET_FLUX_KUSTOMIZE_CONCURRENT", DefaultKustomizeConcurrent))}
	helmArgs := []string{"--requeue-dependency=1s",
		fmt.Sprintf("--concurrent=%d", concurrency(e.opts.HelmConcurrent, "STOREFLEET_FLUX_HELM_CONCURRENT", DefaultHelmConcurrent))}
	// Controller sharding as Flux documents it: the main controllers take what has
	// no key (the cluster configuration, controller shard 0's stores), each extra
	// pair exactly its key.
	mainSelector := func(args []string) []string {
		if len(keys) == 0 {
			return args
		}
		return append(append([]string(nil), args...), "--watch-label-selector="+render.MainControllersSelector)
	}
	go flux(2, "kustomize-controller", e.Tools.KustomizeController, 2, func([]int) []string { return mainSelector(kustomizeArgs) })
	go flux(3, "helm-controller", e.Tools.HelmController, 2, func([]int) []string { return mainSelector(helmArgs) })
	for i, key := range keys {
		selector := "--watch-label-selector=" + render.ShardControllersSelector(key)
		go flux(4+2*i, "kustomize-controller-"+key, e.Tools.KustomizeController, 2, func([]int) []string {
			return append(append([]string(nil), kustomizeArgs...), selector)
		})
		go flux(5+2*i, "helm-controller-"+key, e.Tools.HelmController, 2, func([]int) []string {
			return append(append([]string(nil), helmArgs...), selector)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DefaultHelmConcurrent and DefaultKustomizeConcurrent are the controllers'
// --concurrent when Options and the environment say nothing (Flux's own default is 4).
const (
	DefaultHelmConcurrent      = 4
	DefaultKustomizeConcurrent = 4
)

// concurrency is opt when positive, else the positive integer in the environment
// variable name, else def.
func concurrency(opt int, name string, def int) int {
	if opt > 0 {
		return opt
	}
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func (e *Env) startKCM(ctx context.Context, p *pki) error {
	proc, err := startProcess("kube-controller-manager", e.Tools.KubeControllerManager, []string{
		"--kubeconfig=" + e.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=" + strings.Join(e.kcmControllers(), ","),
		"--service-account-private-key-file=" + p.SAKey,
		"--root-ca-file=" + p.CACert,
		"--use-service-account-credentials=false",
	}, nil, e.LogDir)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.procs = append(e.procs, proc)
	e.mu.Unlock()
	// kube-controller-manager has no health endpoint with --secure-port=0; its
	// serviceaccount controller creating "default" in every namespace shows the
	// controllers are running.
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		var sa corev1.ServiceAccount
		err := e.Client.Get(rctx, client.ObjectKey{Namespace: fluxNamespace, Name: "default"}, &sa)
		if err == nil {
			return nil
		}
		if proc.exited() {
			return proc.errExited()
		}
		select {
		case <-rctx.Done():
			return fmt.Errorf("kube-controller-manager did not create the default ServiceAccount: %v; last log lines (%s):\n%s",
				err, proc.logPath, proc.tail(15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the components in reverse order of their dependencies: the Flux
// controllers, kube-controller-manager, kube-apiserver (an apiserver whose etcd is
// gone hangs on SIGTERM), etcd, then the HTTP servers. It is safe to call twice.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		procs := append([]*process(nil), e.procs...)
		e.mu.Unlock()
		var errs []error
		// The node first, while the API server still answers its programs.
		if e.Node != nil {
			errs = append(errs, e.Node.stop())
		}
		order := [][]string{
			{"source-controller", "kustomize-controller", "helm-controller"},
			{"kube-controller-manager"},
			{"kube-apiserver"},
			{"etcd"},
		}
		for _, group := range order {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for _, p := range procs {
				if !contains(group, componentOf(p.name)) {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := p.stop(15 * time.Second); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
		}
		if e.git != nil {
			errs = append(errs, e.git.Close())
		}
		if e.gitLog != nil {
			errs = append(errs, e.gitLog.Close())
		}
		if e.charts != nil {
			errs = append(errs, e.charts.Close())
		}
		if e.artifacts != nil {
			errs = append(errs, e.artifacts.Close())
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// componentOf is the program a process runs: its name without the controller
// shard ("helm-controller-shard1" runs helm-controller).
func componentOf(name string) string {
	if i := strings.LastIndex(name, "-shard"); i > 0 {
		return name[:i]
	}
	return name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// PIDs returns the process id of every component started (each leads its own
// process group), by component name.
func (e *Env) PIDs() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[string]int{}
	for _, p := range e.procs {
		m[p.name] = p.pid()
	}
	return m
}

// LogFiles lists the component logs, for a failing test to print.
func (e *Env) LogFiles() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var files []string
	seen := map[string]bool{}
	for _, p := range e.procs {
		if !seen[p.logPath] {
			seen[p.logPath] = true
			files = append(files, p.logPath)
		}
	}
	return files
}

// State is what Start writes to <Dir>/env.json for the CLI and for people.
type State struct {
	Kubeconfig       string         `json:"kubeconfig"`
	APIServer        string         `json:"apiServer"`
	FleetURL         string         `json:"fleetURL"`
	ChartRepoURL     string         `json:"chartRepoURL"`
	SourceStorageURL string         `json:"sourceStorageURL"`
	LogDir           string         `json:"logDir"`
	FluxCLI          string         `json:"fluxCLI,omitempty"`
	PIDs             map[string]int `json:"pids"`
	// Node is set when a worker node runs.
	Node *NodeState `json:"node,omitempty"`
}

// NodeState is where the worker node is, for the CLI and for people.
type NodeState struct {
	Name             string   `json:"name"`
	IP               string   `json:"ip"`
	Netns            string   `json:"netns"`
	ContainerdSocket string   `json:"containerdSocket"`
	Images           []string `json:"images"`
	// IngressURL is the ingress controller on the host's loopback.
	IngressURL string `json:"ingressURL"`
}

// State returns the environment's addresses and processes.
func (e *Env) State() State {
	st := State{
		Kubeconfig: e.Kubeconfig, APIServer: e.Config.Host, FleetURL: e.FleetURL,
		ChartRepoURL: e.ChartRepoURL, SourceStorageURL: e.SourceStorageURL, LogDir: e.LogDir, PIDs: e.PIDs(),
		FluxCLI: e.Tools.Flux,
	}
	if n := e.Node; n != nil {
		st.Node = &NodeState{Name: n.Name, IP: n.IP, Netns: n.Netns, ContainerdSocket: n.ContainerdSocket, IngressURL: n.IngressURL}
		for _, img := range n.Images {
			st.Node.Images = append(st.Node.Images, img.Ref)
		}
	}
	return st
}

func (e *Env) writeState() error {
	data, err := json.MarshalIndent(e.State(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.Dir, "env.json"), append(data, '\n'), 0o644)
}

// CheckAPIServer reports whether the kube-apiserver named in kubeconfig answers
// /readyz, for callers that have only the file (the CLI's status command).
func CheckAPIServer(ctx context.Context, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/readyz: %s", cfg.Host, resp.Status)
	}
	return nil
}

// ReadState reads the env.json Start wrote into dir.
func ReadState(dir string) (State, error) {
	var st State
	data, err := os.ReadFile(filepath.Join(dir, "env.json"))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(data, &st)
}
