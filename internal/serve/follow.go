package serve

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/store"
)

// replicaFlags are what several replicas on one fleet need: how often each learns
// the others' commits, and the Lease that picks the one that publishes shards.
type replicaFlags struct {
	fetchInterval             time.Duration
	leaseName, leaseNS        string
	identity                  string
	leaseDuration, leaseRenew time.Duration
}

func replicaFlagSet(fs *flag.FlagSet, r *replicaFlags, env func(string) string) {
	dur := func(p *time.Duration, name, envName string, def time.Duration, help string) {
		if d, err := time.ParseDuration(env(envName)); err == nil {
			def = d
		}
		fs.DurationVar(p, name, def, help+" ["+envName+"]")
	}
	str := func(p *string, name, envName, def, help string) {
		if v := env(envName); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, help+" ["+envName+"]")
	}
	dur(&r.fetchInterval, "fetch-interval", "STOREFLEET_FETCH_INTERVAL", time.Second, "how often the fleet is fetched so stores other replicas (or anyone) committed show here; a store not known here is also fetched for once before 404")
	str(&r.leaseName, "lease-name", "STOREFLEET_LEASE_NAME", "storefleet-publisher", "Lease (coordination.k8s.io) the replicas hold to pick the one that publishes shard artifacts")
	str(&r.leaseNS, "lease-namespace", "STOREFLEET_LEASE_NAMESPACE", "", "namespace of the Lease; empty = the pod's namespace in a cluster (POD_NAMESPACE or the ServiceAccount's), else storefleet")
	host, _ := os.Hostname()
	str(&r.identity, "lease-identity", "STOREFLEET_LEASE_IDENTITY", host+"-"+strconv.Itoa(os.Getpid()), "this replica's name in the Lease")
	dur(&r.leaseDuration, "lease-duration", "STOREFLEET_LEASE_DURATION", 15*time.Second, "how long a standby waits after the leader's last renewal before it takes over (a leader that stops gracefully hands over at once)")
	dur(&r.leaseRenew, "lease-renew-deadline", "STOREFLEET_LEASE_RENEW_DEADLINE", 10*time.Second, "how long the leader keeps trying to renew before it stops publishing; below --lease-duration")
}

func (r replicaFlags) validate() []error {
	var errs []error
	if r.fetchInterval <= 0 {
		errs = append(errs, errors.New("--fetch-interval must be positive"))
	}
	if r.leaseDuration <= r.leaseRenew || r.leaseRenew <= 0 {
		errs = append(errs, errors.New("--lease-renew-deadline must be positive and below --lease-duration"))
	}
	if r.identity == "" || r.leaseName == "" {
		errs = append(errs, errors.New("--lease-identity and --lease-name must not be empty"))
	}
	return errs
}

// missGap is how often a miss may fetch at most: a client polling for a store nobody
// created costs the remote one fetch per gap.
const missGap = 200 * time.Millisecond

// follower keeps this replica's store index in step with the fleet's head when
// others write it: a background fetch every interval, and a fetch when a request
// names a store not known here. After each, the store folders that changed since
// the last head it followed are read again, and the hooks (status, the publisher)
// are told.
type follower struct {
	repo     *gitrepo.Repo
	svc      *fleet.Service
	fetches  *gitrepo.Fetches
	interval time.Duration
	log      *slog.Logger

	mu    sync.Mutex // serializes catch-ups
	seen  string     // the head the index follows
	hooks []func(ctx context.Context, names, dirs []string)
}

func newFollower(repo *gitrepo.Repo, svc *fleet.Service, interval time.Duration, log *slog.Logger) *follower {
	// The index was just loaded from the head: that is where following starts.
	seen, _ := repo.Head()
	return &follower{repo: repo, svc: svc, fetches: repo.NewFetches(missGap), interval: interval, log: log, seen: seen}
}

// onChange adds a hook told of the stores whose folders changed (names, and their
// folders).
func (f *follower) onChange(h func(ctx context.Context, names, dirs []string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks = append(f.hooks, h)
}

// run fetches every interval until ctx is done.
func (f *follower) run(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := f.fetches.Fresh(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !failing {
			// Once per outage: the readiness check reports the remote in detail.
			f.log.Warn("fleet fetch failed; other replicas' commits show here once it works again", "err", err)
		} else if err == nil && failing {
			f.log.Info("fleet fetch works again")
		}
		failing = err != nil
		f.catchUp(ctx)
	}
}

// miss fetches once (shared with every other caller meanwhile) and catches up, so a
// store another replica acknowledged before this request began is found.
func (f *follower) miss(ctx context.Context) {
	if err := f.fetches.Fresh(ctx); err != nil {
		f.log.Debug("fetch on a miss failed; answering from what this replica has", "err", err)
	}
	f.catchUp(ctx)
}

// catchUp re-reads the store folders that changed between the head last followed
// and the current one, and replaces their index entries. Commits this process made
// are among them: a folder still at the tree this process committed is not read
// again (fleet.Service.Followed), since under a burst of creates re-reading and
// parsing every store just committed cost about as much CPU as rendering them.
func (f *follower) catchUp(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	head, err := f.repo.Head()
	if err != nil || head == f.seen {
		return
	}
	trees, err := f.repo.ChangedStoreTrees(ctx, f.seen, head)
	if err != nil {
		f.log.Warn("could not compare the fleet's heads; retrying at the next fetch", "from", f.seen, "to", head, "err", err)
		return
	}
	dirs := make([]string, 0, len(trees))
	for d := range trees {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	names := f.svc.Followed(ctx, trees)
	f.seen = head
	if len(names) == 0 {
		return
	}
	f.log.Debug("followed the fleet", "head", head, "stores", len(names))
	for _, h := range f.hooks {
		h(ctx, names, dirs)
	}
}

// missService answers for a store this replica does not know only after fetching
// once: another replica may have created it a moment ago. The fetch comes before the
// call, not after a 404: the lifecycle records a change's outcome under its request
// id, so a change answered "not found" could not simply be asked again.
type missService struct {
	store.Service
	known func(name string) bool
	miss  func(ctx context.Context)
}

func (m missService) look(ctx context.Context, name string) {
	if !m.known(name) {
		m.miss(ctx)
	}
}

func (m missService) Get(ctx context.Context, name string) (store.View, error) {
	m.look(ctx, name)
	return m.Service.Get(ctx, name)
}

func (m missService) Update(ctx context.Context, name string, change func(store.Store) (store.Store, error), meta store.Meta) (store.Outcome, error) {
	m.look(ctx, name)
	return m.Service.Update(ctx, name, change, meta)
}

func (m missService) Delete(ctx context.Context, name string, purge bool, meta store.Meta) (store.Outcome, error) {
	m.look(ctx, name)
	return m.Service.Delete(ctx, name, purge, meta)
}

func (m missService) History(ctx context.Context, name string) ([]store.Entry, error) {
	m.look(ctx, name)
	return m.Service.History(ctx, name)
}

func (m missService) HistoryPage(ctx context.Context, name string, page store.HistoryPage) (store.HistoryResult, error) {
	m.look(ctx, name)
	return m.Service.HistoryPage(ctx, name, page)
}
