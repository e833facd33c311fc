package serve

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// serve starts even when the fleet remote does not answer (gitrepo.OpenBackground):
// a process that exits then is restarted in a loop and serves nothing, while one
// that serves what its clone holds keeps reads working through a remote's outage.
// The gate below keeps that from turning into lies: until the remote has been
// fetched and the store index rebuilt from it, no write is taken (503, nothing
// happened), and with no clone at all no read either (an empty list would be a lie).

// fleetSource is what the gate asks of the fleet repository (a *gitrepo.Repo).
type fleetSource interface {
	// Synced is closed once the remote has been fetched since start.
	Synced() <-chan struct{}
	// HasTip reports whether the clone holds a commit to read from.
	HasTip() bool
}

// gate is the service the API sees.
type gate struct {
	store.Service
	repo fleetSource
	// open is set once the remote was fetched and the index reloaded from it.
	open  atomic.Bool
	ready readyCache
}

func newGate(svc store.Service, repo fleetSource) *gate {
	g := &gate{Service: svc, repo: repo}
	g.ready = readyCache{check: svc.Ready, ttl: readyTTL}
	return g
}

// openWhenSynced waits (in the background) for the remote, then runs reload (the
// index rebuilt from the fetched tip) and opens the gate. It returns at once, and
// its done channel closes when the wait is over, either way.
func (g *gate) openWhenSynced(ctx context.Context, reload func(context.Context) error, log *slog.Logger) (done <-chan struct{}) {
	ch := make(chan struct{})
	select {
	case <-g.repo.Synced():
		// Fetched at start: the index is already built from the fetched tip.
		g.open.Store(true)
		close(ch)
		return ch
	default:
	}
	go func() {
		defer close(ch)
		select {
		case <-ctx.Done():
			return
		case <-g.repo.Synced():
		}
		if err := reload(ctx); err != nil {
			// The service still reads folders on demand; what the walk missed is
			// found by the next outside-push resync or restart.
			log.Error("store index not rebuilt after the fleet remote answered", "err", err)
		}
		g.open.Store(true)
		g.ready.forget()
		log.Info("fleet remote reached: taking writes")
	}()
	return ch
}

var (
	errNotSynced = store.Errorf(store.EUNAVAILABLE,
		"the fleet repository has not been reached since this process started; nothing was changed, retry later")
	errNoClone = store.Errorf(store.EUNAVAILABLE,
		"the fleet repository has not been fetched yet, so the stores are not known; retry later")
	errReloading = store.Errorf(store.EUNAVAILABLE,
		"the store index is being rebuilt from the fleet repository")
)

func (g *gate) writable() error {
	if g.open.Load() {
		return nil
	}
	return errNotSynced
}

func (g *gate) readable() error {
	if g.open.Load() || g.repo.HasTip() {
		return nil
	}
	return errNoClone
}

// write is the check for a change: a dry run commits nothing, so reading is enough.
func (g *gate) write(m store.Meta) error {
	if m.DryRun {
		return g.readable()
	}
	return g.writable()
}

func (g *gate) Create(ctx context.Context, s store.Store, m store.Meta) (store.Outcome, error) {
	if err := g.write(m); err != nil {
		return store.Outcome{}, err
	}
	return g.Service.Create(ctx, s, m)
}

func (g *gate) Update(ctx context.Context, name string, change func(store.Store) (store.Store, error), m store.Meta) (store.Outcome, error) {
	if err := g.write(m); err != nil {
		return store.Outcome{}, err
	}
	return g.Service.Update(ctx, name, change, m)
}

func (g *gate) Delete(ctx context.Context, name string, purge bool, m store.Meta) (store.Outcome, error) {
	if err := g.write(m); err != nil {
		return store.Outcome{}, err
	}
	return g.Service.Delete(ctx, name, purge, m)
}

func (g *gate) Get(ctx context.Context, name string) (store.View, error) {
	if err := g.readable(); err != nil {
		return store.View{}, err
	}
	return g.Service.Get(ctx, name)
}

func (g *gate) List(ctx context.Context, f store.Filter, limit int, cont string) ([]store.View, string, error) {
	if err := g.readable(); err != nil {
		return nil, "", err
	}
	return g.Service.List(ctx, f, limit, cont)
}

func (g *gate) History(ctx context.Context, name string) ([]store.Entry, error) {
	if err := g.readable(); err != nil {
		return nil, err
	}
	return g.Service.History(ctx, name)
}

func (g *gate) HistoryPage(ctx context.Context, name string, page store.HistoryPage) (store.HistoryResult, error) {
	if err := g.readable(); err != nil {
		return store.HistoryResult{}, err
	}
	return g.Service.HistoryPage(ctx, name, page)
}

func (g *gate) Request(ctx context.Context, id string) (store.Outcome, error) {
	if err := g.readable(); err != nil {
		return store.Outcome{}, err
	}
	return g.Service.Request(ctx, id)
}

// Ready is the cached readiness check. Before the remote was fetched the repository
// itself says why not (gitrepo.Repo.Writable), so it is asked as always.
func (g *gate) Ready(ctx context.Context) error {
	err := g.ready.get(ctx)
	if err == nil && !g.open.Load() {
		return errReloading // fetched, index not rebuilt yet: moments
	}
	return err
}

// readyTTL is how long one readiness answer is reused. The check writes a probe file
// and asks the remote for its refs: a storm of probes (several kubelets, a load
// balancer, a dashboard) must not become a storm on the remote.
const readyTTL = 2 * time.Second

// readyCache runs check at most once per ttl; callers that arrive while it runs
// wait for its answer instead of starting their own.
type readyCache struct {
	check func(context.Context) error
	ttl   time.Duration
	now   func() time.Time // time.Now unless a test sets it

	mu  sync.Mutex
	at  time.Time
	err error
}

func (c *readyCache) get(ctx context.Context) error {
	now := c.now
	if now == nil {
		now = time.Now
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && now().Sub(c.at) < c.ttl {
		return c.err
	}
	c.err = c.check(ctx)
	c.at = now()
	if ctx.Err() != nil {
		// This caller gave up (its own deadline): its answer is not the fleet's.
		c.at = time.Time{}
	}
	return c.err
}

// forget drops the cached answer, so a change serve knows of shows at once.
func (c *readyCache) forget() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}
