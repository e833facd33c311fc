package gitrepo

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// A process that cannot reach its fleet remote at start has two bad choices: exit
// (and be restarted in a loop by its supervisor, serving nothing, while the remote is
// down), or serve as if all were well. OpenBackground takes a third: it serves what
// the clone on disk holds, says it is not ready, and fetches in the background until
// the remote answers. Until then Synced is open and Writable says why.

// OpenBackground is Open for a server: when the first fetch fails, it still returns
// the Repo, reading from the clone in Options.Dir as it is (nothing at all when there
// is none), and retries the fetch in the background with a bounded back-off until it
// succeeds or the Repo is closed. Errors before the fetch (a malformed URL, missing
// SSH key, a clone folder that cannot be created) are still returned.
func OpenBackground(ctx context.Context, opts Options) (*Repo, error) {
	return openRepo(ctx, opts, true)
}

// Synced is closed once the remote's branch has been fetched since Open: at once for
// a Repo that Open returned, later for one OpenBackground returned while the remote
// did not answer. Before that, the clone's content may be behind the remote's and a
// write would not land.
func (r *Repo) Synced() <-chan struct{} { return r.synced }

// HasTip reports whether the clone holds a commit of the branch: whether reads answer
// from something, rather than from an empty fleet that might be a lie.
func (r *Repo) HasTip() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return !r.tip.IsZero()
}

// firstFetch is Open's fetch. A server's (background) asks for the remote's refs
// first, within remoteProbeTimeout, so that a black-holed remote delays the start by
// seconds instead of holding it for ever, and bounds the fetch that follows.
func (r *Repo) firstFetch(ctx context.Context, background bool) error {
	if !background {
		return r.fetchTip(ctx)
	}
	if err := r.probeRemote(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, syncFetchTimeout)
	defer cancel()
	return r.fetchTip(ctx)
}

func (r *Repo) markSynced() {
	r.syncOnce.Do(func() { close(r.synced) })
}

// failSync records why the last attempt to fetch failed, classified and masked, for
// Writable to answer with.
func (r *Repo) failSync(err error) {
	nw := r.notWritable(remoteCause(err), err)
	r.syncFail.Store(&nw)
}

// syncErr is nil once synced, otherwise why not (as of the last attempt).
func (r *Repo) syncErr() error {
	select {
	case <-r.synced:
		return nil
	default:
	}
	if p := r.syncFail.Load(); p != nil {
		return *p
	}
	return r.notWritable(CauseRemoteUnreachable, errNotSynced)
}

type notSyncedError struct{}

func (notSyncedError) Error() string { return "gitrepo: the remote has not been fetched since start" }

var errNotSynced error = notSyncedError{}

// Back-off of the background fetch: from syncBackoffMin, doubling up to
// syncBackoffMax, each wait jittered by ±20% so replicas that lost the remote
// together do not come back in step.
const (
	syncBackoffMin = 500 * time.Millisecond
	syncBackoffMax = 15 * time.Second
	// syncFetchTimeout bounds one full fetch once the remote answered the probe: a
	// first clone of a large fleet takes minutes, a black hole never ends.
	syncFetchTimeout = 10 * time.Minute
)

// syncLoop fetches until it succeeds or the Repo closes. Each attempt first asks
// for the remote's refs (bounded by remoteProbeTimeout), so a black-holed remote
// costs seconds per attempt, not syncFetchTimeout.
func (r *Repo) syncLoop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	wait := syncBackoffMin
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64())))
		select {
		case <-r.closing:
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, syncBackoffMax)
		err := r.probeRemote(ctx)
		if err == nil {
			fctx, fcancel := context.WithTimeout(ctx, syncFetchTimeout)
			err = r.fetchTip(fctx)
			fcancel()
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.failSync(err)
			level := slog.LevelDebug
			if attempt&(attempt-1) == 0 { // 1, 2, 4, 8…: heard, not flooded
				level = slog.LevelWarn
			}
			r.log.Log(ctx, level, "gitrepo: background fetch failed; retrying", "attempt", attempt, "err", r.red.err(err))
			continue
		}
		r.markSynced()
		r.log.Info("gitrepo: the fleet remote answered; the clone is up to date and writes are taken", "attempts", attempt)
		return
	}
}
