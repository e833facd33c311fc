package kube

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// Resources watched.
var (
	HelmReleases      = schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
	ExternalArtifacts = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "externalartifacts"}
	Kustomizations    = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
	Namespaces        = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	Events            = schema.GroupVersionResource{Version: "v1", Resource: "events"}
)

// Config says which cluster and which Flux objects.
type Config struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster (the ServiceAccount).
	Kubeconfig string
	// Rest, when set, is used instead of Kubeconfig (tests).
	Rest *rest.Config
	// FluxNamespace holds the shards' ExternalArtifacts and Kustomizations
	// (flux-system) and the fleet GitRepository. Publishing an artifact is what makes
	// kustomize-controller apply a shard, so a shard needs no reconcile request.
	FluxNamespace string
	// StoreSelector selects store HelmReleases and Namespaces.
	StoreSelector string
	// NamespacePrefix begins every store namespace (store-).
	NamespacePrefix string
	// ShardKustomization, when set, gives the Kustomization that applies a shard's
	// artifact (render.ShardKustomization with the cluster's layout): PublishArtifact
	// applies it the first time it publishes the shard. Nil leaves Kustomizations to
	// someone else.
	ShardKustomization func(shard string) (*kustomizev1.Kustomization, error)
	// ProbeInterval is how often /readyz is asked (1 s by default).
	ProbeInterval time.Duration
	// OnLag is told, for every Ready condition of a HelmRelease, ExternalArtifact
	// or shard Kustomization that changed, how long after the change (its
	// lastTransitionTime, in whole seconds, on the API server's clock) the watcher
	// saw it: the watch's delay, including any outage it resumed from.
	OnLag func(d time.Duration)
	Log   *slog.Logger
}

// Sink receives observations (*status.Tracker).
type Sink interface {
	SetConnected(ok bool)
	// SetShardSource reports a shard's ExternalArtifact: the revision of its
	// artifact and its Ready condition; ("", nil) once it is gone.
	SetShardSource(shard, revision string, ready *status.Condition)
	// SetShardApply reports a shard's Kustomization: status.lastAppliedRevision
	// and its Ready condition, which is Unknown/Progressing while
	// kustomize-controller has not observed the current generation; ("", nil) once
	// it is gone.
	SetShardApply(shard, lastApplied string, ready *status.Condition)
	SetRelease(name string, r *status.Release)
	SetNamespace(name string, exists bool)
	KubeEvent(name string, ev status.KubeEvent)
}

// Watcher watches the cluster for status.
type Watcher struct {
	cfg       Config
	rest      *rest.Config
	dyn       dynamic.Interface
	sink      Sink
	log       *slog.Logger
	informers []cache.SharedIndexInformer
	probe     *http.Client
	// artifacts is the ExternalArtifacts informer, which PublishedArtifacts reads
	// once it has listed; nil before Start.
	artifacts cache.SharedIndexInformer

	mu       sync.Mutex
	probeOK  bool
	synced   bool
	lastErr  error
	started  bool
	stopOnce sync.Once
	stop     chan struct{}
	done     sync.WaitGroup

	ksMu   sync.Mutex
	ksDone map[string]bool // shards whose Kustomization this process applied
}

// warningLog logs API server warnings at debug level.
type warningLog struct{ log *slog.Logger }

func (w warningLog) HandleWarningHeader(code int, agent, text string) {
	w.log.Debug("kube-apiserver warning", "code", code, "agent", agent, "text", text)
}

// RestConfig loads a kubeconfig file, or the in-cluster configuration when path is empty.
func RestConfig(path string) (*rest.Config, error) {
	if path == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig and not in a cluster: %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return c, nil
}

// New prepares a Watcher; Start runs it.
func New(cfg Config, sink Sink) (*Watcher, error) {
	if cfg.FluxNamespace == "" {
		cfg.FluxNamespace = "flux-system"
	}
	if cfg.StoreSelector == "" {
		cfg.StoreSelector = "app.kubernetes.io/managed-by=storefleet"
	}
	if cfg.NamespacePrefix == "" {
		cfg.NamespacePrefix = "store-"
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.OnLag == nil {
		cfg.OnLag = func(time.Duration) {}
	}
	rc := cfg.Rest
	if rc == nil {
		var err error
		if rc, err = RestConfig(cfg.Kubeconfig); err != nil {
			return nil, err
		}
	}
	rc = rest.CopyConfig(rc)
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 50, 100
	}
	rc.UserAgent = "storefleet-gitops-api"
	// API warnings go to our log, not klog's stderr: the API server warns about
	// Flux's finalizer name on every shard Kustomization applied (4,096 lines for a
	// bulk import), which is Flux's choice and nothing an operator can act on.
	rc.WarningHandler = warningLog{cfg.Log}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	hc.Timeout = 2 * time.Second
	return &Watcher{cfg: cfg, rest: rc, dyn: dyn, sink: sink, log: cfg.Log, probe: hc, stop: make(chan struct{}), ksDone: map[string]bool{}}, nil
}

// Start starts the informers and the probe in the background and returns at once.
func (w *Watcher) Start() {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return
	}
	w.started = true
	w.mu.Unlock()

	byLabel := func(o *metav1.ListOptions) { o.LabelSelector = w.cfg.StoreSelector }
	// Only objects that carry the label at all; its value is checked per object.
	byShard := func(o *metav1.ListOptions) { o.LabelSelector = store.ShardLabel }
	w.add(HelmReleases, "", byLabel, trimRelease, cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.release(o, false) },
		UpdateFunc: func(old, o any) { w.lag(old, o); w.release(o, false) },
		DeleteFunc: func(o any) { w.release(o, true) },
	})
	w.add(Namespaces, "", byLabel, trimMeta, cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.namespace(o, false) },
		UpdateFunc: func(_, o any) { w.namespace(o, false) },
		DeleteFunc: func(o any) { w.namespace(o, true) },
	})
	artifacts := w.add(ExternalArtifacts, w.cfg.FluxNamespace, byShard, trimArtifact, cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.shardSource(o, false) },
		UpdateFunc: func(old, o any) { w.lag(old, o); w.shardSource(o, false) },
		DeleteFunc: func(o any) { w.shardSource(o, true) },
	})
	w.mu.Lock()
	w.artifacts = artifacts
	w.mu.Unlock()
	w.add(Kustomizations, w.cfg.FluxNamespace, byShard, trimShard, cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.shardApply(o, false) },
		UpdateFunc: func(old, o any) { w.lag(old, o); w.shardApply(o, false) },
		DeleteFunc: func(o any) { w.shardApply(o, true) },
	})
	w.add(Events, "", nil, w.trimEvent, cache.ResourceEventHandlerDetailedFuncs{
		// Events listed at start are history, not news.
		AddFunc:    func(o any, initial bool) { w.event(o, initial) },
		UpdateFunc: func(_, o any) { w.event(o, false) },
	})
	if ps, ok := w.sink.(PodSink); ok {
		w.watchPods(ps)
	}
	for _, inf := range w.informers {
		w.done.Add(1)
		go func() { defer w.done.Done(); inf.Run(w.stop) }()
	}
	w.done.Add(1)
	go func() { defer w.done.Done(); w.probeLoop() }()
}

// lag reports, when cur's Ready condition changed since old, how long ago the
// change happened. A clock behind the API server's would give negative lags: 0.
func (w *Watcher) lag(old, cur any) {
	t, ok := readySince(cur)
	if !ok {
		return
	}
	if p, ok := readySince(old); ok && p.Equal(t) {
		return
	}
	w.cfg.OnLag(max(0, time.Since(t)))
}

// readySince is when o's Ready condition last changed.
func readySince(o any) (time.Time, bool) {
	u, ok := asUnstructured(o)
	if !ok {
		return time.Time{}, false
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Ready" {
			continue
		}
		s, _ := m["lastTransitionTime"].(string)
		t, err := time.Parse(time.RFC3339, s)
		return t, err == nil
	}
	return time.Time{}, false
}

// Stop stops the informers and the probe.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.done.Wait()
}

func (w *Watcher) add(gvr schema.GroupVersionResource, ns string, tweak dynamicinformer.TweakListOptionsFunc,
	transform cache.TransformFunc, h cache.ResourceEventHandler) cache.SharedIndexInformer {
	inf := dynamicinformer.NewFilteredDynamicInformer(w.dyn, gvr, ns, 0, cache.Indexers{}, tweak).Informer()
	_ = inf.SetTransform(transform)
	_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		w.log.Debug("watch failed; the reflector retries", "resource", gvr.Resource, "err", err)
	})
	_, _ = inf.AddEventHandler(h)
	w.informers = append(w.informers, inf)
	return inf
}

// probeLoop asks /readyz every ProbeInterval: status is "connected" while it answers
// and every informer has listed once (before that the caches would show stores
// without their objects).
func (w *Watcher) probeLoop() {
	t := time.NewTicker(w.cfg.ProbeInterval)
	defer t.Stop()
	for {
		err := w.ping()
		synced := true
		for _, inf := range w.informers {
			if !inf.HasSynced() {
				synced = false
			}
		}
		w.mu.Lock()
		changed := w.probeOK != (err == nil) || w.synced != synced
		w.probeOK, w.synced, w.lastErr = err == nil, synced, err
		ok := w.probeOK && w.synced
		w.mu.Unlock()
		if changed {
			if err != nil {
				w.log.Warn("cluster not reachable; stores show unknown", "err", err)
			} else if ok {
				w.log.Info("cluster connected", "host", w.rest.Host)
			}
			w.sink.SetConnected(ok)
		}
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

func (w *Watcher) ping() error {
	req, err := http.NewRequest(http.MethodGet, strings.TrimRight(w.rest.Host, "/")+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := w.probe.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/readyz: %s", w.rest.Host, resp.Status)
	}
	return nil
}

// Check reports the cluster connection, for /readyz: nil when connected.
func (w *Watcher) Check() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.lastErr != nil:
		return w.lastErr
	case !w.probeOK:
		return errors.New("cluster not probed yet")
	case !w.synced:
		return errors.New("cluster answers; watches still listing")
	}
	return nil
}

func (w *Watcher) storeOf(ns string) (string, bool) {
	return strings.CutPrefix(ns, w.cfg.NamespacePrefix)
}

func asUnstructured(o any) (*unstructured.Unstructured, bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	u, ok := o.(*unstructured.Unstructured)
	return u, ok
}

func (w *Watcher) release(o any, deleted bool) {
	u, ok := asUnstructured(o)
	if !ok {
		return
	}
	name, ok := w.storeOf(u.GetNamespace())
	// A store's HelmRelease is named after the store (docs/design.md).
	if !ok || u.GetName() != name {
		return
	}
	if deleted {
		w.sink.SetRelease(name, nil)
		return
	}
	w.sink.SetRelease(name, ToRelease(u))
}

func (w *Watcher) namespace(o any, deleted bool) {
	u, ok := asUnstructured(o)
	if !ok {
		return
	}
	if name, ok := w.storeOf(u.GetName()); ok {
		w.sink.SetNamespace(name, !deleted)
	}
}

// shardOf is the shard an ExternalArtifact or Kustomization belongs to, from its
// label; objects with another value are not the fleet's.
func shardOf(u *unstructured.Unstructured) (string, bool) {
	s := u.GetLabels()[store.ShardLabel]
	return s, store.ValidShard(s)
}

func (w *Watcher) shardSource(o any, deleted bool) {
	shardStatus(o, deleted, ToShardSource, w.sink.SetShardSource)
}

func (w *Watcher) shardApply(o any, deleted bool) {
	shardStatus(o, deleted, ToShardApply, w.sink.SetShardApply)
}

// shardStatus hands a shard object's revision and Ready condition to set; a
// deleted object reports neither.
func shardStatus(o any, deleted bool, read func(*unstructured.Unstructured) (string, *status.Condition),
	set func(shard, revision string, ready *status.Condition)) {
	u, ok := asUnstructured(o)
	if !ok {
		return
	}
	shard, ok := shardOf(u)
	if !ok {
		return
	}
	if deleted {
		set(shard, "", nil)
		return
	}
	rev, ready := read(u)
	set(shard, rev, ready)
}

func (w *Watcher) event(o any, initial bool) {
	u, ok := asUnstructured(o)
	if !ok || initial {
		return
	}
	name, ok := w.storeOf(u.GetNamespace())
	if !ok {
		return
	}
	w.sink.KubeEvent(name, ToKubeEvent(name, u))
}
