package serve

import (
	"context"
	"errors"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/metrics"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// replicas is what attachStatus needs to run as one of several replicas: the
// follower (the others' commits) and the Lease settings.
type replicas struct {
	flags replicaFlags
	fl    *follower
}

// standby is the Tracker as the watcher feeds it. While this replica does not
// publish, nobody here tells the Tracker which revisions were published, in which
// order: the leader's ExternalArtifacts, as the watch shows them, are that order
// (one object's updates arrive in the order they were written). It also remembers
// each shard's newest revision, for Publish to wait on.
type standby struct {
	*status.ClusterView
	// m is the cluster's metrics: its connection gauge.
	m       *metrics.Cluster
	mu      sync.Mutex
	leading bool
	revs    map[string]string // shard → newest artifact revision seen
	changed chan struct{}     // closed when revs changes
}

func newStandby(v *status.ClusterView, m *metrics.Cluster) *standby {
	return &standby{ClusterView: v, m: m, revs: map[string]string{}, changed: make(chan struct{})}
}

// SetConnected is the watcher's report of its cluster's connection: the Tracker's,
// and the cluster's gauge.
func (s *standby) SetConnected(ok bool) {
	s.m.Connected(ok)
	s.ClusterView.SetConnected(ok)
}

func (s *standby) SetShardSource(shard, revision string, ready *status.Condition) {
	s.mu.Lock()
	if !s.leading && revision != "" {
		s.ClusterView.Published(shard, revision)
	}
	if revision != "" && s.revs[shard] != revision {
		s.revs[shard] = revision
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
	s.ClusterView.SetShardSource(shard, revision, ready)
}

func (s *standby) setLeading(ok bool) {
	s.mu.Lock()
	s.leading = ok
	s.mu.Unlock()
}

// leader runs the shard publisher while this replica holds the Lease, and stands
// in for it otherwise.
type leader struct {
	log     *slog.Logger
	repo    *gitrepo.Repo
	fl      *follower
	sb      *standby
	cluster string
	newPub  func() (*publish.Publisher, error)
	// adopted completes what a previous leader may have left half done (the shard
	// Kustomizations), after the first pass.
	adopted func(ctx context.Context) error

	mu  sync.Mutex
	pub *publish.Publisher // nil while standing by

	stop func()
	done chan struct{}
}

// startLeader competes for the Lease in the background; while it holds it, a
// publisher runs (its first pass, then its background passes), and shards other
// replicas changed are published as the follower sees them.
func startLeader(ctx context.Context, cfg kube.LeaseConfig, rep replicas, repo *gitrepo.Repo, sb *standby, cluster string, newPub func() (*publish.Publisher, error), adopted func(ctx context.Context) error, log *slog.Logger) (*leader, error) {
	l := &leader{log: log, repo: repo, fl: rep.fl, sb: sb, cluster: cluster, newPub: newPub, adopted: adopted, done: make(chan struct{})}
	e, err := kube.NewElector(cfg, l.lead)
	if err != nil {
		return nil, err
	}
	rep.fl.onChange(l.changed)
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.stop = func() { cancel(); <-l.done }
	go func() {
		defer close(l.done)
		e.Run(ectx)
	}()
	return l, nil
}

// lead is one term: publish until it ends. The publisher is made anew each term
// (a stopped one does not start again), and adopts what the cluster has.
func (l *leader) lead(ctx context.Context) {
	pub, err := l.newPub()
	if err != nil {
		l.log.Error("shard publisher: cannot start", "err", err)
		<-ctx.Done()
		return
	}
	l.sb.setLeading(true)
	l.mu.Lock()
	l.pub = pub
	l.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	t0 := time.Now()
	moved := 0
	if err := pub.Start(sctx); err != nil {
		l.log.Warn("shard publisher: first pass incomplete; retrying in the background", "err", err)
	} else {
		// Only a complete pass made every shard current with the head it fetched.
		moved = l.sb.CaughtUp(t0)
	}
	cancel()
	l.log.Info("shard publisher: started on this replica (Lease leader)", "took", time.Since(t0).Round(time.Millisecond), "stores_caught_up", moved)
	if l.adopted != nil {
		actx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		if err := l.adopted(actx); err != nil {
			l.log.Warn("shard publisher: not every shard's Kustomization could be checked; a shard's next publish applies it", "err", err)
		}
		cancel()
	}
	<-ctx.Done()
	l.mu.Lock()
	l.pub = nil
	l.mu.Unlock()
	pub.Stop()
	l.sb.setLeading(false)
}

func (l *leader) current() *publish.Publisher {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pub
}

// changed publishes, on the leader, the shards of store folders the follower saw
// change: another replica's commit waits for this, not for the next background pass.
func (l *leader) changed(ctx context.Context, _, dirs []string) {
	pub := l.current()
	if pub == nil {
		return
	}
	shards := map[string]bool{}
	for _, d := range dirs {
		if ref, ok := store.ParseDir(d); ok && ref.Cluster == l.cluster {
			shards[path.Base(path.Dir(d))] = true
		}
	}
	for shard := range shards {
		if _, err := pub.Publish(ctx, shard); err != nil {
			l.log.Warn("shard publisher: publishing a shard another replica changed failed; the next pass retries", "shard", shard, "err", err)
		}
	}
}

// Publish is status.Service's: on the leader it publishes; on a standby it waits
// until the leader's artifact for the shard carries this replica's head (the
// leader fetches and publishes it within a fetch interval or so), and returns that
// revision, so the store waits for exactly the publish that carries its commit.
func (l *leader) Publish(ctx context.Context, shard string) (string, error) {
	if pub := l.current(); pub != nil {
		return pub.Publish(ctx, shard)
	}
	head, err := l.repo.Head()
	if err != nil {
		return "", err
	}
	for {
		l.sb.mu.Lock()
		rev, ch := l.sb.revs[shard], l.sb.changed
		l.sb.mu.Unlock()
		if c := revisionCommit(rev); c != "" {
			ok, err := l.repo.Includes(ctx, c, head)
			if errors.Is(err, gitrepo.ErrNotFound) {
				// Published from a commit this replica has not fetched yet.
				_ = l.fl.fetches.Fresh(ctx)
				ok, err = l.repo.Includes(ctx, c, head)
			}
			if err == nil && ok {
				return rev, nil
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", errors.New("the leader has not published the shard yet")
		}
	}
}

// revisionCommit is the commit of a revision main@sha1:<commit>.
func revisionCommit(rev string) string {
	_, c, ok := strings.Cut(rev, "@sha1:")
	if !ok {
		return ""
	}
	return c
}

// leaseConfig is the Lease of the replicas' election: in a cluster by default in the
// pod's namespace, else in the Flux namespace (which exists wherever Flux does).
func (r replicas) leaseConfig(k kubeFlags, c servedCluster, log *slog.Logger) kube.LeaseConfig {
	ns := r.flags.leaseNS
	if ns == "" && c.inCluster {
		ns = kube.Namespace()
	}
	if ns == "" {
		ns = k.fluxNamespace
	}
	return kube.LeaseConfig{
		Kubeconfig: c.kubeconfig, Namespace: ns, Name: r.flags.leaseName, Identity: r.flags.identity,
		Duration: r.flags.leaseDuration, RenewDeadline: r.flags.leaseRenew, RetryPeriod: min(r.flags.leaseDuration/7, r.flags.leaseRenew/2), Log: log,
	}
}
