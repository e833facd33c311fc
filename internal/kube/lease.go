package kube

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaseConfig says which Lease the replicas compete for and how.
type LeaseConfig struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster. Rest, when set, wins.
	Kubeconfig string
	Rest       *rest.Config
	// Namespace and Name of the Lease (coordination.k8s.io/v1).
	Namespace, Name string
	// Identity names this replica in the Lease; unique among the replicas.
	Identity string
	// Duration is how long after the holder's last renewal a standby may take the
	// Lease (15 s by default); RenewDeadline how long the holder keeps retrying a
	// renewal before it gives up leading (10 s), below Duration so it stops before
	// anyone else can start; RetryPeriod how often each tries (2 s).
	Duration, RenewDeadline, RetryPeriod time.Duration
	Log                                  *slog.Logger
}

// Elector runs leader election on one Lease through client-go's leaderelection, so
// one replica at a time runs what must not run twice (the shard publisher). A
// leader that stops (Stop, its context ends) releases the Lease at once; one that
// dies leaves it to expire after Duration.
type Elector struct {
	cfg LeaseConfig
	le  *leaderelection.LeaderElector

	lead func(ctx context.Context)
	mu   sync.Mutex // one term at a time: the previous term's lead has returned
}

// NewElector prepares an Elector; Run competes. lead runs for each term this
// replica holds the Lease, with a context that ends when the term does; it should
// return soon after.
func NewElector(cfg LeaseConfig, lead func(ctx context.Context)) (*Elector, error) {
	if cfg.Namespace == "" || cfg.Name == "" || cfg.Identity == "" {
		return nil, errors.New("kube: the Lease needs a namespace, a name and an identity")
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 15 * time.Second
	}
	if cfg.RenewDeadline <= 0 {
		cfg.RenewDeadline = 10 * time.Second
	}
	if cfg.RetryPeriod <= 0 {
		cfg.RetryPeriod = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	rc := cfg.Rest
	if rc == nil {
		var err error
		if rc, err = RestConfig(cfg.Kubeconfig); err != nil {
			return nil, err
		}
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "storefleet-gitops-api/leader-election"
	cl, err := coordinationv1.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	e := &Elector{cfg: cfg, lead: lead}
	e.le, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
			Client:     cl,
			LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
		},
		LeaseDuration:   cfg.Duration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            cfg.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: e.term,
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				cfg.Log.Info("leader election: leader is", "lease", cfg.Namespace+"/"+cfg.Name, "leader", id, "me", id == cfg.Identity)
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Elector) term(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ctx.Err() != nil {
		return // client-go starts a term in its own goroutine: this one ended before it began
	}
	e.cfg.Log.Info("leader election: leading", "lease", e.cfg.Namespace+"/"+e.cfg.Name, "identity", e.cfg.Identity)
	e.lead(ctx)
	e.cfg.Log.Info("leader election: no longer leading", "lease", e.cfg.Namespace+"/"+e.cfg.Name, "identity", e.cfg.Identity)
}

// Run competes for the Lease until ctx is done, again after each lost term, and
// releases it when ctx ends while leading. It returns once the last term's lead has
// returned.
func (e *Elector) Run(ctx context.Context) {
	for ctx.Err() == nil {
		e.le.Run(ctx)
	}
	e.mu.Lock() // the last term's lead, started in its own goroutine, is over
	e.mu.Unlock()
}

// Leader is the identity holding the Lease as last seen ("" = none seen yet).
func (e *Elector) Leader() string { return e.le.GetLeader() }

// Namespace is the namespace this process runs in, when in a cluster: where a
// Lease goes by default.
func Namespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// EnsureShardKustomizations applies the Kustomization of every shard that has an
// ExternalArtifact, once per process and shard, as PublishArtifact does. A new Lease
// holder calls it after adopting the artifacts: a leader killed between publishing a
// shard's first artifact and applying its Kustomization leaves an artifact nobody
// applies, and adoption alone (same tarball) writes nothing that would apply it.
func (w *Watcher) EnsureShardKustomizations(ctx context.Context) error {
	arts, err := w.PublishedArtifacts(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for shard := range arts {
		if err := ctx.Err(); err != nil {
			return err
		}
		errs = append(errs, w.ensureShardKustomization(ctx, shard))
	}
	return errors.Join(errs...)
}
