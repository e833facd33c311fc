package status

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// Purger makes one DELETE ?purge=true enough when a cluster is connected. A purge
// takes two commits because Flux must apply the first (the namespace loses its
// prune: disabled annotation) before the second (the folder removed) can prune the
// namespace; without a cluster nobody can tell when that happened, so the client
// sends the second request. With one, the Tracker knows: once the shard
// Kustomization applied the commit that made a store purging, the Purger commits
// the second step through the lifecycle, under the first request's Request-Id and
// Actor (read from the store's history in Git, so a restart finds them too).
//
// It acts on what the Tracker says, never on its own memory: at start it looks at
// every store, then at every status a store reports in phase purging, so a store
// left purging by a stopped gitops-api is finished by the next one. A user's own
// second purge meanwhile is harmless: before the first step is applied Service
// refuses it (earlyPurge), after that the lifecycle serialises changes to a store
// and checks its state, so whichever comes second finds the store gone.
type Purger struct {
	T *Tracker
	// Stores is the lifecycle with status attached (Service), so the second commit
	// reaches the Tracker and the shard publisher like any request's.
	Stores store.Service
	Log    *slog.Logger
	// Workers is how many second steps run at once (2 by default). The writer
	// refuses a commit that purges more than its guard allows (10 by default), and
	// concurrent changes share a commit, so this stays well below it.
	Workers int
	// MinBackoff and MaxBackoff bound the wait before a failed second step is tried
	// again (1 s and 2 min by default): the writer's purge guard, a conflicting push
	// or an unreachable remote clear up on their own.
	MinBackoff, MaxBackoff time.Duration

	mu    sync.Mutex
	queue []string
	held  map[string]*purgeWork // queued, running or waiting to retry
	wake  chan struct{}
}

type purgeWork struct {
	running  bool
	again    bool // a status came in while running: look again afterwards
	failures int
}

// actorGitopsAPI is the actor of a second step whose first step has none in Git (a
// push made outside gitops-api).
const actorGitopsAPI = "gitops-api"

// Run finishes purges until ctx ends.
func (p *Purger) Run(ctx context.Context) {
	p.defaults()
	p.mu.Lock()
	p.held = map[string]*purgeWork{}
	p.wake = make(chan struct{}, 1)
	p.mu.Unlock()

	var wg sync.WaitGroup
	for range p.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx)
		}()
	}
	p.watch(ctx)
	wg.Wait()
}

func (p *Purger) defaults() {
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Workers <= 0 {
		p.Workers = 2
	}
	if p.MinBackoff <= 0 {
		p.MinBackoff = time.Second
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 2 * time.Minute
	}
	p.MaxBackoff = max(p.MaxBackoff, p.MinBackoff)
}

// watch enqueues every store the Tracker reports ready for the second step: all of
// them when it (re)subscribes, then each one whose status changes while purging. A
// subscription that fell behind is dropped by the Tracker; the next one starts with
// a full look again, so nothing is missed.
func (p *Purger) watch(ctx context.Context) {
	for ctx.Err() == nil {
		sub, _, err := p.T.Subscribe("", "", 4096)
		if err != nil {
			p.Log.Error("purge: cannot follow store status", "err", err)
			return
		}
		for _, name := range p.T.purgeable() {
			p.enqueue(name)
		}
		lagged := p.follow(ctx, sub)
		p.T.Unsubscribe(sub)
		if !lagged {
			return
		}
		p.Log.Debug("purge: status subscription fell behind; looking at every store again")
	}
}

// follow reads sub until ctx ends or the Tracker closes it; it reports whether that
// was because the subscription fell behind.
func (p *Purger) follow(ctx context.Context, sub *Subscription) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case ev, ok := <-sub.C:
			if !ok {
				return sub.Lagged
			}
			if ev.Kind == KindStatus && ev.Status != nil && ev.Status.Phase == store.PhasePurging {
				if _, ok := p.T.readyToPurge(ev.Store); ok {
					p.enqueue(ev.Store)
				}
			}
		}
	}
}

func (p *Purger) enqueue(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w, ok := p.held[name]; ok {
		// Queued or waiting to retry: that look will see the news. Running: it may
		// have looked before the news, so it looks again when done.
		w.again = w.again || w.running
		return
	}
	p.held[name] = &purgeWork{}
	p.queue = append(p.queue, name)
	p.signal()
}

// signal wakes one worker; the channel holds one wake-up, and a worker that takes
// it passes it on while work is left.
func (p *Purger) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Purger) next(ctx context.Context) (string, bool) {
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			name := p.queue[0]
			p.queue = p.queue[1:]
			p.held[name].running = true
			if len(p.queue) > 0 {
				p.signal()
			}
			p.mu.Unlock()
			return name, true
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false
		case <-p.wake:
		}
	}
}

func (p *Purger) work(ctx context.Context) {
	for {
		name, ok := p.next(ctx)
		if !ok {
			return
		}
		retry, err := p.finish(ctx, name)
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		w := p.held[name]
		w.running = false
		switch {
		case retry:
			w.failures++
			w.again = false
			d := p.backoff(w.failures)
			p.Log.Warn("purge: second step failed; retrying", "store", name, "in", d.Round(time.Millisecond), "attempt", w.failures, "err", err)
			time.AfterFunc(d, func() { p.requeue(name) })
		case w.again:
			w.again = false
			p.queue = append(p.queue, name)
			p.signal()
		default:
			delete(p.held, name)
		}
		p.mu.Unlock()
	}
}

func (p *Purger) requeue(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.held[name]; ok {
		p.queue = append(p.queue, name)
		p.signal()
	}
}

// backoff doubles from MinBackoff up to MaxBackoff, each wait drawn from its upper
// half so that stores refused together (the writer's purge guard refuses a whole
// commit's purges) do not come back together.
func (p *Purger) backoff(failures int) time.Duration {
	d := p.MinBackoff
	for i := 1; i < failures && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// finish commits the second purge step of name if the Tracker still says it is
// due. retry is true when it should be tried again later (err says why).
func (p *Purger) finish(ctx context.Context, name string) (retry bool, err error) {
	d, ok := p.T.readyToPurge(name)
	if !ok {
		return false, nil
	}
	v, err := p.Stores.Get(ctx, name)
	switch {
	case store.ErrorCode(err) == store.ENOTFOUND:
		// Removed meanwhile (a user's own second purge): nothing left to do.
		return false, nil
	case err != nil:
		return true, err
	case v.State != store.StatePurging:
		// Git moved on from what the Tracker holds (an outside push); the Tracker
		// hears of it from the publisher and says again when it is due.
		p.Log.Info("purge: store no longer purging in Git; not removing it", "store", name, "state", v.State)
		return false, nil
	}
	first := d.Commit
	if first == "" && v.Commit != nil {
		first = v.Commit.SHA // loaded at start: the last change, the one that made it purging
	}
	if d.Commit != "" && v.Commit != nil && v.Commit.SHA != d.Commit {
		p.Log.Info("purge: store changed since the applied commit; waiting for the newer one", "store", name, "applied", d.Commit, "head", v.Commit.SHA)
		return false, nil
	}
	hist, err := p.Stores.History(ctx, name)
	if err != nil {
		return true, err
	}
	m := store.Meta{Continues: true}
	if e, ok := stepOne(hist, first); ok {
		m.Actor, m.RequestID = e.Actor, e.RequestID
	}
	if m.RequestID == "" {
		// The first step came without a Request-Id (pushed outside gitops-api): the
		// second gets its own, so it can still be looked up.
		m.RequestID = newRequestID()
	}
	if m.Actor == "" {
		m.Actor = actorGitopsAPI
	}
	p.Log.Info("purge: Flux applied the first step; removing the store folder", "store", name,
		"request_id", m.RequestID, "actor", m.Actor, "first_commit", first)
	t0 := time.Now()
	out, err := p.Stores.Delete(ctx, name, true, m)
	switch {
	case store.ErrorCode(err) == store.ENOTFOUND:
		p.Log.Info("purge: already removed", "store", name, "request_id", m.RequestID)
		return false, nil
	case err != nil:
		return true, err
	case out.State == store.RequestPending:
		// The push was cut off by the write deadline and its outcome is not known
		// yet: asking again later either finds the folder gone or takes the step.
		return true, fmt.Errorf("second step %s not confirmed yet", m.RequestID)
	}
	commit := ""
	if out.Commit != nil {
		commit = out.Commit.SHA
	}
	p.Log.Info("purge: store folder removed; Flux deletes the namespace and the data", "store", name,
		"request_id", m.RequestID, "actor", m.Actor, "commit", commit, "took", time.Since(t0).Round(time.Millisecond))
	return false, nil
}

// stepOne is the history entry of the commit that made the store purging: the one
// at commit when it is known, else the newest (a purging store changes no more
// until its folder goes).
func stepOne(hist []store.Entry, commit string) (store.Entry, bool) {
	for _, e := range hist {
		if commit != "" && e.Commit.SHA == commit {
			return e, true
		}
	}
	if len(hist) == 0 {
		return store.Entry{}, false
	}
	return hist[0], true
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

// readyToPurge reports whether name is purging in Git and the cluster has applied
// that: the shard Kustomization applied the publish carrying the store's commit,
// while the cluster answers. It returns the store's desired state.
func (t *Tracker) readyToPurge(name string) (Desired, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.stores[name]
	if !ok || !t.conn[e.desired.Cluster] || e.desired.State != store.StatePurging {
		return Desired{}, false
	}
	return e.desired, e.applied()
}

// earlyPurge refuses a purge request for a store whose first purge step the
// cluster has not applied yet: the lifecycle would remove the folder, and Flux,
// pruning a namespace still marked prune: disabled, would leave it and the data
// behind. The Purger takes the second step once it is safe, so the request has
// nothing to do. Without a connected cluster nothing is known and the request goes
// through, as the two-request contract has it.
func (t *Tracker) earlyPurge(name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.stores[name]
	if !ok || !t.conn[e.desired.Cluster] || e.desired.State != store.StatePurging || e.applied() {
		return nil
	}
	return store.Errorf(store.ECONFLICT, "store %q is being purged: its namespace was made prunable and the store folder is removed once Flux has applied that; nothing to do", name)
}

// purgeable lists the stores readyToPurge now.
func (t *Tracker) purgeable() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for name, e := range t.stores {
		if t.conn[e.desired.Cluster] && e.desired.State == store.StatePurging && e.applied() {
			out = append(out, name)
		}
	}
	return out
}
