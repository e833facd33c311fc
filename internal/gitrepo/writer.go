package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// pending is one submitted change on its way through the writer.
type pending struct {
	ch   Change
	done chan Result
	res  Result
	// deadline is the change's write deadline: no push of it starts after it, and
	// every push of it is cut off at it.
	deadline time.Time
	// state is queued until the writer takes the change into a commit, or dropped if
	// its submitter gave up first; only one of the two moves succeeds.
	state atomic.Int32

	final bool
	noop  bool
	dupOf *pending // same Request-Id and store earlier in the batch
	// seen pins "any" expectations to what the writer saw first, so a retry on a newer
	// tip cannot overwrite someone else's change.
	seen    plumbing.Hash
	seenSet bool
	// tenant of a create that carries a quota, read by its submitter
	// (readTenant) so that the writer, which builds every commit alone, does not
	// parse each create's files.
	tenant     string
	tenantErr  error
	tenantRead bool
}

const (
	queued int32 = iota
	taken
	dropped
)

func (p *pending) fail(err error) {
	p.final = true
	p.res = Result{Err: err}
}

// DefaultWriteTimeout is the write deadline of a change whose context has none
// sooner.
const DefaultWriteTimeout = 30 * time.Second

// Submit queues a change and waits for its outcome. Changes submitted while a push is in
// flight go into the next commit together.
//
// The change's write deadline is ctx's deadline or Options.WriteTimeout from now,
// whichever comes first; it is kept by the writer, not by the caller's connection. If
// the deadline passes (or ctx is cancelled) before the writer takes the change, it is
// dropped and ErrNotPushed returned: nothing landed. Once taken, Submit waits for the
// writer, which answers by the deadline: the commit; ErrNotPushed, ErrUnreachable,
// ErrRefused or ErrStorage when it is certain that nothing landed (and then it never
// will); or ErrOutcomeUnknown when the deadline cut a push off in flight, which the
// writer goes on deciding (FindRequest).
func (r *Repo) Submit(ctx context.Context, c Change) Result {
	return r.SubmitAll(ctx, []Change{c})[0]
}

// SubmitAll queues changes that go into the same commit (with whatever else is queued),
// and returns their outcomes in order. Each change still succeeds or fails on its own;
// the deletion guard counts the purges of the whole commit.
func (r *Repo) SubmitAll(ctx context.Context, changes []Change) []Result {
	out := make([]Result, len(changes))
	group := make([]*pending, 0, len(changes))
	idx := make([]int, 0, len(changes))
	deadline := time.Now().Add(r.writeTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for i, c := range changes {
		if err := c.validate(); err != nil {
			out[i] = Result{Err: err}
			continue
		}
		p := &pending{ch: c, deadline: deadline, done: make(chan Result, 1)}
		r.readTenant(p)
		group = append(group, p)
		idx = append(idx, i)
	}
	if len(group) == 0 {
		return out
	}
	fill := func(err error) []Result {
		for _, i := range idx {
			out[i] = Result{Err: err}
		}
		return out
	}
	// Either ends the wait: the caller giving up, or the write deadline.
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	r.qmu.RLock()
	if r.closed {
		r.qmu.RUnlock()
		return fill(ErrClosed)
	}
	select {
	case r.queue <- group:
		r.qmu.RUnlock()
	case <-wctx.Done():
		r.qmu.RUnlock()
		return fill(fmt.Errorf("%w: the writer's queue stayed full", ErrNotPushed))
	}
	for j, p := range group {
		select {
		case res := <-p.done:
			out[idx[j]] = res
			continue
		case <-wctx.Done():
		}
		if p.state.CompareAndSwap(queued, dropped) {
			out[idx[j]] = Result{Err: fmt.Errorf("%w: the writer had not taken the change yet", ErrNotPushed)}
			continue
		}
		// Taken into a commit: the writer cuts its pushes off at the deadline and
		// answers right after, so waiting for it keeps the answer true.
		out[idx[j]] = <-p.done
	}
	return out
}

// QueueDepth is how many submitted groups of changes wait for the writer (a
// SubmitAll is one group), for the queue-depth gauge.
func (r *Repo) QueueDepth() int { return len(r.queue) }

func (r *Repo) writeTimeout() time.Duration {
	if r.opts.WriteTimeout > 0 {
		return r.opts.WriteTimeout
	}
	return DefaultWriteTimeout
}

// Close stops the writer after the commit in flight; queued changes get ErrClosed.
func (r *Repo) Close() error {
	r.qmu.Lock()
	if r.closed {
		r.qmu.Unlock()
		<-r.done
		return nil
	}
	r.closed = true
	r.qmu.Unlock()
	close(r.closing)
	<-r.done
	r.recent.merges.Wait()
	<-r.warmed
	r.gcs.Wait()
	r.limbo.close()
	r.hist.close()
	return nil
}

// linger is how long the writer waits for the clients it just answered to come back
// with their next change, when the last commit was a group: without it, every other
// commit would carry only the few changes that raced in first.
const linger = 2 * time.Millisecond

func (r *Repo) run() {
	defer close(r.done)
	last := 0
	for {
		var batch []*pending
		select {
		case g := <-r.queue:
			batch = append(batch, g...)
		case <-r.closing:
			for {
				select {
				case g := <-r.queue:
					for _, p := range g {
						p.done <- Result{Err: ErrClosed}
					}
				default:
					return
				}
			}
		}
		var timer *time.Timer
	fill:
		for len(batch) < r.opts.MaxBatch {
			select {
			case g := <-r.queue:
				batch = append(batch, g...)
				continue
			default:
			}
			if len(batch) >= last {
				break
			}
			if timer == nil {
				timer = time.NewTimer(linger)
			}
			select {
			case g := <-r.queue:
				batch = append(batch, g...)
			case <-timer.C:
				break fill
			}
		}
		if timer != nil {
			timer.Stop()
		}
		last = len(batch)
		r.process(batch)
		for _, p := range batch {
			p.done <- p.res
		}
		r.maybeMergeRecent()
	}
}

// attempt is one push of a batch whose outcome was not proven when it ended (its
// connection broke, or the deadline cut it off): it may still land.
type attempt struct {
	base, commit plumbing.Hash
	applied      []*pending
}

// Back-off between push attempts that lost a race or failed: full jitter over an
// exponentially growing window, so that writers contending for one branch spread out
// instead of colliding again in step.
const (
	backoffMin = 5 * time.Millisecond
	backoffMax = time.Second
)

// process applies a batch as one commit, retrying on a fresh tip when the push loses a
// race, until every change is final or the batch's write deadline passes. Each answer
// is one of three: landed; certain that nothing landed (and then it never will: no push
// of it is left that could); or, when the deadline cut a push off in flight, not known
// yet (handed to the resolver, resolve.go).
func (r *Repo) process(batch []*pending) {
	now := time.Now()
	var live []*pending
	for _, p := range batch {
		if !p.state.CompareAndSwap(queued, taken) {
			continue // its submitter gave up on it and has answered
		}
		if !now.Before(p.deadline) {
			p.fail(fmt.Errorf("%w: the deadline passed before the writer took the change", ErrNotPushed))
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	// The batch shares its commits, so it keeps the soonest deadline of its changes:
	// none is answered late.
	deadline := live[0].deadline
	for _, p := range live[1:] {
		if p.deadline.Before(deadline) {
			deadline = p.deadline
		}
	}
	failAll := func(err error) {
		for _, p := range live {
			if !p.final {
				p.fail(err)
			}
		}
	}
	var unsure []attempt
	// giveUp ends the batch on an error before a push: a change an earlier attempt
	// may still land is not known yet, the others certainly did not land.
	giveUp := func(err error) {
		if len(unsure) > 0 {
			r.expire(live, unsure, err)
			return
		}
		failAll(err)
	}
	// An on-disk clone takes each attempt's objects before its push (see keepObjects);
	// those of attempts that did not land are removed once the batch is settled.
	kept := map[plumbing.Hash]*objectSet{}
	var landedObjs *objectSet
	tried := map[plumbing.Hash]*objectSet{}
	defer func() {
		// An attempt whose answer was lost may be the tip a later fetch found: the
		// fetch then had all its objects here already and brought none, so they
		// must stay.
		r.mu.RLock()
		if o := tried[r.tip]; o != nil && landedObjs == nil {
			landedObjs = o
		}
		r.mu.RUnlock()
		r.dropObjects(kept, landedObjs)
	}()
	var lastErr error
	window := backoffMin
	for n := 0; ; n++ {
		if !time.Now().Before(deadline) {
			r.expire(live, unsure, lastErr)
			return
		}
		if r.opts.Retries > 0 && n > r.opts.Retries {
			if lastErr == nil {
				lastErr = errors.New("the remote branch kept moving")
			}
			if len(unsure) > 0 {
				r.expire(live, unsure, lastErr)
				return
			}
			failAll(fmt.Errorf("%w: push failed after %d attempts: %w", ErrNotPushed, n, lastErr))
			return
		}
		base, commit, applied, objs, err := r.build(live)
		if err != nil {
			giveUp(err)
			return
		}
		if commit.IsZero() {
			r.finish(live, base, nil)
			return
		}
		if r.opts.Dir != "" {
			if err := r.keepObjects(objs, kept); err != nil {
				giveUp(err)
				return
			}
			tried[commit] = objs
		}
		pctx, cancel := context.WithDeadline(context.Background(), deadline)
		ok, err := r.push(pctx, base, commit, objs)
		cancel()
		if ok {
			landedObjs = objs
			r.landed(commit, objs, applied)
			r.finish(live, commit, applied)
			r.obs.Commit(len(applied), time.Since(now))
			r.logLanded(commit, applied, n)
			return
		}
		if certain(err) {
			r.obs.PushFailed("unreachable")
		}
		switch {
		case err == nil:
			// The ref update was refused: the branch moved, or a hook said no.
		case certain(err) && len(unsure) == 0:
			// Nothing was pushed, and a dead remote or a full disk does not come
			// back in the moments retries take: the caller hears now, and tries
			// again later.
			failAll(err)
			return
		case certain(err):
			lastErr = err
		default:
			unsure = append(unsure, attempt{base: base, commit: commit, applied: applied})
			lastErr = err
			if !time.Now().Before(deadline) {
				r.expire(live, unsure, err)
				return
			}
		}
		fctx, cancel := context.WithDeadline(context.Background(), deadline)
		ferr := r.fetch(fctx)
		cancel()
		r.mu.RLock()
		tip := r.tip
		r.mu.RUnlock()
		if tip == commit {
			// The push landed although its answer was lost.
			landedObjs = objs
			r.landed(commit, objs, applied)
			r.finish(live, commit, applied)
			r.obs.Commit(len(applied), time.Since(now))
			r.logLanded(commit, applied, n)
			return
		}
		switch {
		case certain(err):
		case err == nil, ferr == nil && tip != base:
			// Refused, or cut off while the branch moved on (smart HTTP reports a
			// lost compare-and-swap as an error): either way a race that was lost.
			r.obs.PushFailed("conflict")
		default:
			r.obs.PushFailed("unknown")
		}
		if ferr == nil {
			// An attempt whose base is no longer the tip can never land (the update
			// is a compare-and-swap on its base); one that did land is in the index
			// now, and the next build answers its changes as duplicates.
			unsure = r.stillUnsure(unsure, tip)
		}
		lost := err == nil && ferr == nil && tip != base
		switch {
		case err == nil && ferr != nil && len(unsure) == 0 && certain(ferr):
			failAll(ferr)
			return
		case err == nil && ferr != nil:
			lastErr = ferr
		}
		if !lost || n > 0 {
			// A first lost race is retried at once on the tip just fetched; after
			// that, and after any failure, back off.
			r.sleepUntil(deadline, time.Duration(rand.Int64N(int64(window))))
			window = min(window*2, backoffMax)
		}
		for _, p := range live {
			p.noop = false // re-decided on the new tip
		}
	}
}

// logLanded writes one debug line per change of a landed commit, carrying its
// request id, so that a request can be followed from the API's line through the
// fleet's to the push (and on to status) in the logs.
func (r *Repo) logLanded(commit plumbing.Hash, applied []*pending, attempt int) {
	if !r.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	for _, p := range applied {
		r.log.Debug("gitrepo: change pushed", "request_id", p.ch.RequestID, "store", p.ch.Store,
			"commit", commit.String(), "group", len(applied), "attempt", attempt+1)
	}
}

// sleepUntil sleeps d, or until the deadline if that comes first.
func (r *Repo) sleepUntil(deadline time.Time, d time.Duration) {
	if left := time.Until(deadline); left < d {
		d = left
	}
	if d > 0 {
		time.Sleep(d)
	}
}

// stillUnsure keeps the attempts whose fate the fetched tip does not prove: it drops
// those that landed (their commit is indexed now; the next build answers their
// changes as duplicates) and those that never can (their base is no longer the tip).
func (r *Repo) stillUnsure(unsure []attempt, tip plumbing.Hash) []attempt {
	out := unsure[:0]
	for _, a := range unsure {
		if a.base == tip && !r.idx.has(a.commit) {
			out = append(out, a)
		}
	}
	return out
}

// expire answers every change still open when the batch's deadline passed: not known
// yet if an attempt that held it may still land (handed to the resolver), else
// certain that nothing landed.
func (r *Repo) expire(live []*pending, unsure []attempt, cause error) {
	why := "the deadline passed before a push of the change could land"
	if cause != nil {
		why += " (last: " + cause.Error() + ")"
	}
	for _, p := range live {
		if p.final || p.dupOf != nil {
			continue
		}
		var held []attempt
		for _, a := range unsure {
			if slices.Contains(a.applied, p) {
				held = append(held, a)
			}
		}
		if len(held) == 0 {
			p.fail(fmt.Errorf("%w: %s", ErrNotPushed, why))
			continue
		}
		r.limbo.add(r, p.ch, held)
		p.fail(ErrOutcomeUnknown)
	}
	for _, p := range live {
		if p.dupOf != nil && !p.final {
			p.final = true
			p.res = Result{Err: p.dupOf.res.Err}
		}
	}
}

// build applies every non-final change to the current tip and returns the new commit
// (zero if nothing changes) with the objects it created.
func (r *Repo) build(live []*pending) (base, commit plumbing.Hash, applied []*pending, objs *objectSet, err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	base = r.tip
	baseRoot, err := r.commitRoot(base)
	if err != nil {
		return base, plumbing.ZeroHash, nil, nil, err
	}
	objs = newObjectSet()
	b, err := r.newBatchTree(live, baseRoot, objs)
	if err != nil {
		return base, plumbing.ZeroHash, nil, nil, err
	}
	for _, p := range live {
		if !p.final {
			b.apply(p)
		}
	}
	// A later change to the same folder in the batch can make an earlier one moot; the
	// commit still records both, which is what happened.
	if len(b.applied) == 0 {
		return base, plumbing.ZeroHash, nil, objs, nil
	}
	b.unshare()
	root, err := b.writeRoot()
	if err != nil {
		return base, plumbing.ZeroHash, nil, nil, err
	}
	if root == baseRoot {
		// Changes that cancel out (create then purge in one batch) make no commit.
		for _, p := range b.applied {
			p.noop = true
		}
		return base, plumbing.ZeroHash, nil, objs, nil
	}
	commit, err = r.batchCommit(base, root, b.applied, objs)
	if err != nil {
		return base, plumbing.ZeroHash, nil, nil, err
	}
	return base, commit, b.applied, objs, nil
}

// commitRoot returns the root tree of commit h, zero for an empty branch, whose first
// commit has nothing to build on. Callers hold mu.
func (r *Repo) commitRoot(h plumbing.Hash) (plumbing.Hash, error) {
	if h.IsZero() {
		return plumbing.ZeroHash, nil
	}
	c, err := object.GetCommit(r.st, h)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("gitrepo: read tip: %w", err)
	}
	return c.TreeHash, nil
}

// batchTree is what one build's changes share: the overlay they all write into, one
// after the other, and what the guards must know about the batch as a whole.
type batchTree struct {
	r       *Repo
	ov      *overlay
	objs    *objectSet
	purges  int                 // purges in the batch, for the MaxPurges guard
	inBatch map[string]*pending // first change per Request-Id and store
	purged  map[string]bool     // folders purged explicitly, for the deletion guard
	applied []*pending
	shards  int // the fleet's shard count at the base (checkLayout)

	// quota: a create of the batch carries its tenant's limit, so the batch's
	// creates are counted per tenant (tenants.go): counts is the base's count
	// (read at the first create or purge) plus the creates applied so far, less
	// the folders purged so far; made, the folders the batch wrote (uncount).
	quota    bool
	baseRoot plumbing.Hash
	counts   map[string]int
	made     map[plumbing.Hash]madeFolder
}

// newBatchTree counts the batch's purges before any change is applied: the MaxPurges
// limit is about the whole commit, not about the changes that happen to come first.
func (r *Repo) newBatchTree(live []*pending, baseRoot plumbing.Hash, objs *objectSet) (*batchTree, error) {
	n, err := r.shardsAt(baseRoot)
	if err != nil {
		return nil, err
	}
	ov := newOverlay(r.st, baseRoot, objs)
	ov.big = &r.big
	b := &batchTree{
		shards:  n,
		r:       r,
		ov:      ov,
		objs:    objs,
		inBatch: map[string]*pending{},
		purged:  map[string]bool{},
	}
	for _, p := range live {
		if !p.final && p.ch.removes() {
			b.purges++
		}
		if !p.final && p.ch.Action == ActionCreate && p.ch.StoresPerTenant > 0 {
			b.quota = true
		}
	}
	b.baseRoot = baseRoot
	return b, nil
}

// apply decides one change against the tree as the batch left it so far. A change
// that is a duplicate, fails its checks or changes nothing is settled or failed on its
// own and leaves the tree alone, so it never fails its neighbours.
func (b *batchTree) apply(p *pending) {
	if b.duplicate(p) {
		return
	}
	c := &p.ch
	if err := c.checkLayout(b.shards); err != nil {
		p.fail(err)
		return
	}
	cur, err := b.ov.get(c.Dir)
	if err != nil {
		p.fail(err)
		return
	}
	if err := p.checkFolder(cur); err != nil {
		p.fail(err)
		return
	}
	next, err := b.target(p)
	if err != nil {
		p.fail(err)
		return
	}
	if next == cur {
		p.noop = true
		p.res = Result{Tree: hashString(cur)}
		return
	}
	tenant, err := b.checkQuota(p)
	if err != nil {
		p.fail(err)
		return
	}
	if err := b.ov.set(c.Dir, next); err != nil {
		p.fail(err)
		return
	}
	for _, f := range c.Shared {
		if err := b.ov.setFile(f.Path, b.objs.add(blobObject(f.Content))); err != nil {
			p.fail(err)
			return
		}
	}
	if c.removes() {
		b.purged[c.Dir] = true
		b.uncount(c.Dir, cur)
	} else {
		b.counted(p, next, tenant)
	}
	if tenant != "" {
		b.counts[tenant]++
		b.r.tenants.seed(next, tenant)
	}
	p.res = Result{Tree: hashString(next)}
	b.applied = append(b.applied, p)
}

// duplicate reports a change whose Request-Id was already seen for its store, so a
// client's retry is not applied twice: earlier in this batch (finish gives it the first
// one's outcome) or in recent history (settled here with the commit that applied it).
func (b *batchTree) duplicate(p *pending) bool {
	c := &p.ch
	if c.RequestID == "" || c.Continues {
		return false
	}
	k := requestKey(c.RequestID, c.Store)
	if first, ok := b.inBatch[k]; ok {
		p.dupOf = first
		return true
	}
	b.inBatch[k] = p
	if h, ok := b.r.idx.lookup(c.RequestID, c.Store); ok {
		p.final = true
		p.res = Result{Commit: h.String(), Duplicate: true}
		return true
	}
	return false
}

// checkFolder holds the change to what its caller expected of the folder (cur, zero if
// absent), so a change decided on a stale read fails instead of overwriting what
// someone else wrote meanwhile.
func (p *pending) checkFolder(cur plumbing.Hash) error {
	c := &p.ch
	if c.Action == ActionCreate {
		if !cur.IsZero() {
			return fmt.Errorf("%w: %s", ErrExists, c.Dir)
		}
		return nil
	}
	if cur.IsZero() {
		return fmt.Errorf("%w: %s", ErrNotFound, c.Dir)
	}
	switch c.Expect.kind {
	case expectTree:
		if cur.String() != c.Expect.tree {
			return fmt.Errorf("%w: %s is at tree %s, expected %s", ErrConflict, c.Dir, cur, c.Expect.tree)
		}
	case expectAbsent:
		return fmt.Errorf("%w: %s exists", ErrConflict, c.Dir)
	default:
		if !p.seenSet {
			p.seen, p.seenSet = cur, true
		} else if p.seen != cur {
			return fmt.Errorf("%w: %s changed on the remote while this change was being pushed", ErrConflict, c.Dir)
		}
	}
	return nil
}

// target returns the tree the change puts at its folder, zero for a purge. The purge
// limit is checked per change, so the forced purges of a batch over the limit still
// land while the others are refused.
func (b *batchTree) target(p *pending) (plumbing.Hash, error) {
	if !p.ch.removes() {
		return buildFolder(p.ch.Files, b.objs)
	}
	if b.purges > max(b.r.opts.MaxPurges, 0) && !p.ch.Force {
		return plumbing.ZeroHash, fmt.Errorf("%w: %d purges in one commit, limit %d (force to override)", ErrTooManyDeletes, b.purges, b.r.opts.MaxPurges)
	}
	return plumbing.ZeroHash, nil
}

// writeRoot writes the batch's trees and returns the new root tree. It refuses a root
// that lost a store folder no change of the batch purged: only an explicit purge may
// remove a store, whatever a bug in the tree code would otherwise do.
func (b *batchTree) writeRoot() (plumbing.Hash, error) {
	root, err := b.ov.write()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	for _, gone := range b.ov.removedFolders() {
		if !b.purged[gone] {
			return plumbing.ZeroHash, fmt.Errorf("%w: %s", ErrGuard, gone)
		}
	}
	return root, nil
}

// batchCommit makes the batch's commit on base. Its message lists every applied
// change with its trailers: git history is the audit log, and the Request-Id index is
// rebuilt from it on the next start.
func (r *Repo) batchCommit(base, root plumbing.Hash, applied []*pending, objs *objectSet) (plumbing.Hash, error) {
	changes := make([]*Change, len(applied))
	for i, p := range applied {
		changes[i] = &p.ch
	}
	now := r.opts.Now()
	co := &object.Commit{
		Author:    object.Signature{Name: r.opts.Author.Name, Email: r.opts.Author.Email, When: now},
		Committer: object.Signature{Name: r.opts.Committer.Name, Email: r.opts.Committer.Email, When: now},
		Message:   commitMessage(changes),
		TreeHash:  root,
	}
	if !base.IsZero() {
		co.ParentHashes = []plumbing.Hash{base}
	}
	obj := &plumbing.MemoryObject{}
	if err := co.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return objs.add(obj), nil
}

func hashString(h plumbing.Hash) string {
	if h.IsZero() {
		return ""
	}
	return h.String()
}

// finish settles every change that is not final yet: applied ones with commit, no-ops
// with the tip they were checked against, in-batch duplicates like their first.
func (r *Repo) finish(live []*pending, commit plumbing.Hash, applied []*pending) {
	isApplied := map[*pending]bool{}
	for _, p := range applied {
		isApplied[p] = true
	}
	for _, p := range live {
		if p.final || p.dupOf != nil {
			continue
		}
		p.final = true
		switch {
		case isApplied[p]:
			p.res.Commit = commit.String()
		case p.noop:
			p.res.NoOp = true
			p.res.Commit = hashString(commit)
		}
	}
	for _, p := range live {
		if p.dupOf == nil || p.final {
			continue
		}
		p.final = true
		first := p.dupOf.res
		if first.Err != nil {
			p.res = Result{Err: first.Err}
		} else {
			p.res = Result{Commit: first.Commit, Tree: first.Tree, Duplicate: true}
		}
	}
}

// landed records a pushed commit locally: its objects, the tracking ref, the index.
// An on-disk clone holds the objects already (keepObjects, before the push); a clone
// in memory takes them now, so a push that fails leaves nothing behind in it.
func (r *Repo) landed(commit plumbing.Hash, objs *objectSet, applied []*pending) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tip != commit {
		stored := true
		if r.opts.Dir == "" {
			for _, h := range objs.order {
				if _, err := r.st.SetEncodedObject(objs.byHash[h]); err != nil {
					// The tip must never name a missing object; the remote has the
					// commit, and the next fetch brings it.
					r.log.Error("gitrepo: keep a pushed commit in the clone", "commit", commit, "err", err)
					stored = false
					break
				}
			}
		}
		if stored {
			r.setTip(commit)
		}
	}
	r.idx.mu.Lock()
	r.idx.indexed[commit] = true
	r.idx.mu.Unlock()
	for _, p := range applied {
		r.idx.add(p.ch.RequestID, p.ch.Store, commit)
	}
}

// push sends the new objects and moves the remote branch from base to commit,
// compare-and-swap: the receiving side refuses the update if the branch is no longer at
// base. It reports false without error when the branch had moved.
// Every byte of it is bound by ctx (the batch's write deadline): when ctx ends,
// the connection is closed, so a push cut off cannot complete later from this side.
func (r *Repo) push(ctx context.Context, base, commit plumbing.Hash, objs *objectSet) (bool, error) {
	if r.localPath != "" {
		ok, err := r.pushLocal(base, commit, objs)
		if ok {
			r.maybeGC()
		}
		return ok, err
	}
	ok, err := r.pushRemote(ctx, base, commit, objs)
	return ok, r.red.err(classifyRemote(err))
}

func (r *Repo) pushRemote(ctx context.Context, base, commit plumbing.Hash, objs *objectSet) (bool, error) {
	pp, err := objs.packed()
	if err != nil {
		return false, err
	}
	pack := pp.raw
	sess, err := r.receivePackSession()
	if err != nil {
		return false, fmt.Errorf("gitrepo: push session: %w", err)
	}
	defer sess.Close()
	var req *packp.ReferenceUpdateRequest
	if r.ep.Protocol == "http" || r.ep.Protocol == "https" {
		// Smart HTTP is stateless: the POST needs no advertisement first, and the old
		// value in the command is the compare-and-swap. One round trip instead of two.
		req = packp.NewReferenceUpdateRequest()
		_ = req.Capabilities.Set(capability.ReportStatus)
		_ = req.Capabilities.Set(capability.Agent, capability.DefaultAgent())
	} else {
		ar, err := sess.AdvertisedReferencesContext(ctx)
		if err != nil && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return false, fmt.Errorf("gitrepo: push: %w", err)
		}
		cur := plumbing.ZeroHash
		if ar != nil {
			if h, ok := ar.References[r.branchRef.String()]; ok {
				cur = h
			}
		}
		if cur != base {
			return false, nil
		}
		if ar != nil {
			req = packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
		} else {
			req = packp.NewReferenceUpdateRequest()
		}
	}
	req.Commands = []*packp.Command{{Name: r.branchRef, Old: base, New: commit}}
	req.Packfile = io.NopCloser(bytes.NewReader(pack))
	rs, err := sess.ReceivePack(ctx, req)
	if err != nil {
		return false, fmt.Errorf("gitrepo: push: %w", err)
	}
	if rs != nil {
		if rs.UnpackStatus != "ok" {
			return false, fmt.Errorf("%w: remote could not unpack: %s", ErrRefused, rs.UnpackStatus)
		}
		for _, cs := range rs.CommandStatuses {
			if cs.Status == "ok" {
				continue
			}
			if strings.Contains(cs.Status, "declined") {
				// A hook said no: asking again gets the same answer.
				return false, fmt.Errorf("%w: %s", ErrRefused, cs.Status)
			}
			// The branch moved under us, or another push holds its lock: a race,
			// retried on a fresh tip.
			return false, nil
		}
	}
	return true, nil
}
