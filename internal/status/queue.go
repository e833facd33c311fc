package status

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// QueueConfig configures a Queue.
type QueueConfig struct {
	// T is told, after each publish, which stores the published revision carries
	// (Tracker.Carried).
	T *Tracker
	// Publish brings the shard's artifact up to date with the newest fleet head the
	// process knows and returns its revision: internal/serve's leader, which
	// publishes on the Lease holder and on a standby only waits for the holder's
	// artifact to carry that head (a standby never writes to the cluster).
	Publish func(ctx context.Context, shard string) (string, error)
	// Workers bounds the publishes in flight (default 8). The publisher runs
	// different shards' publishes side by side (one shard's stay in order), each
	// mostly a wait for the API server, so a burst's shards drain several at a time
	// rather than one after another; on a standby, which only waits, a slow shard
	// does not hold the others behind it.
	Workers int
	// Timeout bounds one publish (default 30 s); a publish cut short is retried.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a failed shard is tried again
	// (default 250 ms, doubling to 30 s).
	MinBackoff, MaxBackoff time.Duration
	Log                    *slog.Logger
}

// Queue publishes shards after commits, off the request path: a request's commit
// marks its shard dirty and the request answers at once (the commit is pushed:
// nothing acknowledged depends on the publish). Workers publish dirty shards, each
// from the newest head, so commits that pile up on a shard while it waits or is
// being published go out together in its next publish. A shard is published by one
// worker at a time; a failure puts its commits back and retries it with backoff.
// Should the process stop before then, the commits are in Git: the next leader's
// first pass, or this one's background pass, publishes them, and the Tracker's
// stores already wait for the shard's next publish (Tracker.Committed).
type Queue struct {
	cfg QueueConfig

	mu       sync.Mutex
	waiting  map[string]map[string]string // shard → store → commit waiting for a revision
	order    []string                     // dirty shards not in flight, oldest first
	queued   map[string]bool              // in order
	busy     map[string]bool              // in flight
	due      map[string]time.Time         // not to be tried before (after a failure)
	failures map[string]int
	idle     chan struct{} // closed while nothing waits or is in flight
	closed   bool

	wake chan struct{}
	stop chan struct{}
	base context.Context
	halt context.CancelFunc
	wg   sync.WaitGroup
}

// NewQueue starts the workers; Close stops them.
func NewQueue(cfg QueueConfig) *Queue {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(cfg.MinBackoff, 30*time.Second)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	q := &Queue{
		cfg: cfg, waiting: map[string]map[string]string{}, queued: map[string]bool{}, busy: map[string]bool{},
		due: map[string]time.Time{}, failures: map[string]int{}, idle: make(chan struct{}),
		wake: make(chan struct{}, cfg.Workers), stop: make(chan struct{}),
	}
	close(q.idle)
	q.base, q.halt = context.WithCancel(context.Background())
	for range cfg.Workers {
		q.wg.Add(1)
		go q.work()
	}
	return q
}

// Add records that the store's commit, pushed, waits for a publish of shard.
func (q *Queue) Add(shard, name, commit string) {
	q.mu.Lock()
	if len(q.waiting) == 0 && len(q.busy) == 0 {
		q.idle = make(chan struct{})
	}
	w := q.waiting[shard]
	if w == nil {
		w = map[string]string{}
		q.waiting[shard] = w
	}
	w[name] = commit
	if !q.busy[shard] && !q.queued[shard] {
		q.order = append(q.order, shard)
		q.queued[shard] = true
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default: // every worker already has a wake-up coming
	}
}

// Depth is how many shards have commits waiting for a publish, in flight included.
func (q *Queue) Depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting) + q.inFlightOnly()
}

// inFlightOnly counts shards in flight with nothing new waiting behind them.
func (q *Queue) inFlightOnly() int {
	n := 0
	for s := range q.busy {
		if _, ok := q.waiting[s]; !ok {
			n++
		}
	}
	return n
}

// Idle waits until every commit added so far was carried by a publish (or ctx ends).
func (q *Queue) Idle(ctx context.Context) error {
	q.mu.Lock()
	idle := q.idle
	q.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close publishes what is waiting until ctx ends, then stops the workers (a
// publish in flight is cut short). What is left is in Git and handed over to the
// publisher's passes; the count of shards left is returned.
func (q *Queue) Close(ctx context.Context) int {
	q.mu.Lock()
	closed := q.closed
	q.closed = true
	q.mu.Unlock()
	if closed {
		return q.left()
	}
	_ = q.Idle(ctx)
	close(q.stop)
	q.halt()
	q.wg.Wait()
	left := q.left()
	if left > 0 {
		q.cfg.Log.Warn("publish queue: stopped with shards waiting; the shard publisher's next pass publishes them", "shards", left)
	}
	return left
}

func (q *Queue) left() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

func (q *Queue) work() {
	defer q.wg.Done()
	for {
		shard, batch, wait, ok := q.take()
		if !ok {
			return
		}
		if shard == "" {
			if wait <= 0 {
				wait = time.Hour // until woken
			}
			t := time.NewTimer(wait)
			select {
			case <-q.wake:
			case <-t.C:
			case <-q.stop:
				t.Stop()
				return
			}
			t.Stop()
			continue
		}
		ctx, cancel := context.WithTimeout(q.base, q.cfg.Timeout)
		rev, err := q.cfg.Publish(ctx, shard)
		cancel()
		if err == nil {
			// Every commit of the batch was pushed before the publish began, and the
			// publish is built from the newest head: it carries them all.
			for name, commit := range batch {
				q.cfg.T.Carried(name, commit, rev)
			}
			q.cfg.Log.Debug("publish queue: shard published", "shard", shard, "revision", rev, "stores", len(batch))
		}
		q.done(shard, batch, err)
	}
}

// take hands out the oldest dirty shard that is due, with the commits waiting on
// it; or, when none is, how long until one is (0: until woken).
func (q *Queue) take() (shard string, batch map[string]string, wait time.Duration, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-q.stop:
		return "", nil, 0, false
	default:
	}
	now := time.Now()
	for i, s := range q.order {
		if d, ok := q.due[s]; ok && now.Before(d) {
			if w := d.Sub(now); wait == 0 || w < wait {
				wait = w
			}
			continue
		}
		q.order = append(q.order[:i], q.order[i+1:]...)
		delete(q.queued, s)
		q.busy[s] = true
		batch = q.waiting[s]
		delete(q.waiting, s)
		return s, batch, 0, true
	}
	return "", nil, wait, true
}

// done ends a shard's publish: on failure its commits wait again (behind any newer
// commit of the same store, which a later publish carries anyway) and the shard is
// due after a backoff.
func (q *Queue) done(shard string, batch map[string]string, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.busy, shard)
	if err != nil {
		w := q.waiting[shard]
		if w == nil {
			w = map[string]string{}
			q.waiting[shard] = w
		}
		for name, commit := range batch {
			if _, newer := w[name]; !newer {
				w[name] = commit
			}
		}
		q.failures[shard]++
		backoff := q.cfg.MinBackoff << min(q.failures[shard]-1, 16)
		backoff = min(backoff, q.cfg.MaxBackoff)
		q.due[shard] = time.Now().Add(backoff)
		if q.base.Err() == nil {
			q.cfg.Log.Warn("publish queue: shard not published; retrying", "shard", shard, "stores", len(w),
				"attempt", q.failures[shard], "retry_in", backoff, "err", err)
		}
	} else {
		delete(q.failures, shard)
		delete(q.due, shard)
	}
	if _, ok := q.waiting[shard]; ok && !q.queued[shard] {
		q.order = append(q.order, shard)
		q.queued[shard] = true
	}
	if len(q.waiting) == 0 && len(q.busy) == 0 {
		close(q.idle)
	}
}
