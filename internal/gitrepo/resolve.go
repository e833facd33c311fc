package gitrepo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// A push the write deadline cut off in flight may or may not land: the remote may
// have taken it just before the connection closed. Its changes wait here, in limbo,
// until the remote answers again and the resolver can tell: the branch holds a commit
// with the change's Request-Id for its store → committed; otherwise → failed.
//
// Why failed is final: the push's connection was closed at the deadline, so this
// process sends nothing more of it; and the update is a compare-and-swap on the
// attempt's base, so once the branch has moved past that base the old push can
// never land. Residual window: while the branch still sits at that base, a copy of the
// cut-off push that the remote side keeps processing after the connection closed (a
// slow receive-pack, a buffering proxy) could still move it. The resolver waits
// resolveGrace after the cut before it calls such a change failed, which covers a
// server finishing work it had already received; a proxy that replays a request
// minutes later is not covered.
//
// With an on-disk clone (Options.Dir) limbo is kept in a file beside it, so a restart
// goes on deciding what the last process left open.

// resolveGrace is how long after the cut the resolver waits before it calls a change
// failed while the branch is still at the cut-off push's base.
var resolveGrace = 2 * time.Second

// Bounds of the resolver's checks: each probe of the remote and each fetch, and the
// pause between rounds while the remote does not answer.
const (
	resolveIOTimeout = 5 * time.Second
	resolvePauseMin  = 200 * time.Millisecond
	resolvePauseMax  = 10 * time.Second
	limboKeep        = 10000 // decided entries kept for FindRequest
)

// RequestState is a request's state as the writer knows it.
type RequestState string

const (
	RequestPending   RequestState = "pending"
	RequestCommitted RequestState = "committed"
	RequestFailed    RequestState = "failed"
)

// RequestInfo is what FindRequest knows of a request.
type RequestInfo struct {
	ID, Store, Cluster string
	// Tenant is the store's tenant as the commit's trailer names it; empty for a
	// commit from before tenants, and for a change not known to have landed.
	Tenant string
	Action Action
	State  RequestState
	Commit string    // when committed
	Time   time.Time // the commit's time, when committed
	Reason string    // when failed
}

type limboAttempt struct {
	Base   string `json:"base"`
	Commit string `json:"commit"`
}

type limboEntry struct {
	ID       string         `json:"id"`
	Store    string         `json:"store"`
	Cluster  string         `json:"cluster"`
	Action   Action         `json:"action"`
	Attempts []limboAttempt `json:"attempts,omitempty"`
	Cut      time.Time      `json:"cut"`
	State    RequestState   `json:"state"`
	Commit   string         `json:"commit,omitempty"`
	Reason   string         `json:"reason,omitempty"`
}

type limbo struct {
	mu      sync.Mutex
	byID    map[string]*limboEntry
	order   []string
	f       *os.File // nil for a clone in memory
	running bool
	log     func(msg string, args ...any)
	deep    deepIndex
}

// openLimbo loads what an earlier process left undecided (Options.Dir only) and
// starts the resolver if anything is.
func (r *Repo) openLimbo() *limbo {
	l := &limbo{byID: map[string]*limboEntry{}, log: r.log.Warn}
	if r.opts.Dir == "" {
		return l
	}
	path := r.opts.Dir + ".pending.jsonl"
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e limboEntry
			// A line cut short by a crash is skipped: the entry before it stands.
			if json.Unmarshal(sc.Bytes(), &e) != nil || e.ID == "" {
				continue
			}
			l.putLocked(&e)
		}
		f.Close()
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		r.log.Warn("gitrepo: pending pushes are kept in memory only", "path", path, "err", err)
		return l
	}
	l.f = f
	l.compact(path)
	for _, e := range l.byID {
		if e.State == RequestPending {
			l.running = true
			go r.resolve(l)
			break
		}
	}
	return l
}

// compact rewrites the file with one line per kept entry, so it does not grow
// with every decision.
func (l *limbo) compact(path string) {
	tmp := path + ".tmp"
	var b []byte
	for _, id := range l.order {
		line, err := json.Marshal(l.byID[id])
		if err != nil {
			continue
		}
		b = append(append(b, line...), '\n')
	}
	if err := writeFileAtomic(tmp, b); err != nil {
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		return
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o644); err == nil {
		l.f.Close()
		l.f = f
	}
}

func (l *limbo) putLocked(e *limboEntry) {
	if _, ok := l.byID[e.ID]; !ok {
		l.order = append(l.order, e.ID)
	}
	l.byID[e.ID] = e
	for len(l.order) > limboKeep {
		old := l.byID[l.order[0]]
		if old != nil && old.State == RequestPending {
			break // never forget an undecided one
		}
		delete(l.byID, l.order[0])
		l.order = l.order[1:]
	}
}

// recordLocked appends the entry's current state to the file. The file is synced:
// a pending entry is what keeps the answer "pending" true after a crash.
func (l *limbo) recordLocked(e *limboEntry) {
	if l.f == nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		l.log("gitrepo: recording a pending push failed", "request_id", e.ID, "err", err)
		return
	}
	_ = l.f.Sync()
}

// add puts a change whose push was cut off into limbo and makes sure the resolver runs.
func (l *limbo) add(r *Repo, c Change, held []attempt) {
	e := &limboEntry{ID: c.RequestID, Store: c.Store, Cluster: c.Cluster, Action: c.Action,
		Cut: time.Now().UTC(), State: RequestPending}
	for _, a := range held {
		e.Attempts = append(e.Attempts, limboAttempt{Base: a.base.String(), Commit: a.commit.String()})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.RequestID != "" {
		l.putLocked(e)
		l.recordLocked(e)
	}
	if !l.running {
		l.running = true
		go r.resolve(l)
	}
}

func (l *limbo) get(id string) (limboEntry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.byID[id]
	if !ok {
		return limboEntry{}, false
	}
	return *e, true
}

func (l *limbo) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// resolve runs while anything is in limbo: it waits for the remote to answer, brings
// the clone to the remote's tip, and decides what it can.
func (r *Repo) resolve(l *limbo) {
	pause := resolvePauseMin
	for {
		select {
		case <-r.closing:
			l.mu.Lock()
			l.running = false
			l.mu.Unlock()
			return
		case <-time.After(pause):
		}
		pause = min(pause*2, resolvePauseMax)
		ctx, cancel := context.WithTimeout(context.Background(), resolveIOTimeout)
		tip, err := r.remoteTip(ctx)
		cancel()
		if err != nil {
			continue
		}
		r.mu.RLock()
		have := r.tip
		r.mu.RUnlock()
		if tip != have {
			// Only when the remote answers: a fetch holds the clone's sync lock, which
			// the writer needs too, so it must not hang on a dead remote.
			ctx, cancel := context.WithTimeout(context.Background(), resolveIOTimeout)
			err := r.fetch(ctx)
			cancel()
			if err != nil {
				continue
			}
		}
		if r.decide(l, tip) == 0 {
			l.mu.Lock()
			if l.undecidedLocked() == 0 {
				l.running = false
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
		}
		pause = resolvePauseMin
	}
}

func (l *limbo) undecidedLocked() int {
	n := 0
	for _, e := range l.byID {
		if e.State == RequestPending {
			n++
		}
	}
	return n
}

// decide settles the entries the clone, now at the remote's tip, can tell about and
// returns how many stay pending.
func (r *Repo) decide(l *limbo, remoteTip plumbing.Hash) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	left := 0
	for _, id := range l.order {
		e := l.byID[id]
		if e.State != RequestPending {
			continue
		}
		if h, ok := r.idx.lookup(e.ID, e.Store); ok {
			e.State, e.Commit = RequestCommitted, h.String()
			l.recordLocked(e)
			r.log.Info("gitrepo: a push cut off by the write deadline had landed", "request_id", e.ID, "commit", h)
			continue
		}
		atBase := false
		for _, a := range e.Attempts {
			if a.Base == remoteTip.String() || a.Base == plumbing.ZeroHash.String() && remoteTip.IsZero() {
				atBase = true
			}
		}
		if atBase && time.Since(e.Cut) < resolveGrace {
			left++
			continue
		}
		e.State = RequestFailed
		e.Reason = fmt.Sprintf("nothing landed: the push was cut off at the write deadline and the branch (now at %s) does not hold the change; it will not land later, so it is safe to send again", remoteTip)
		l.recordLocked(e)
		r.log.Warn("gitrepo: a push cut off by the write deadline did not land", "request_id", e.ID, "store", e.Store)
	}
	return left
}

// remoteTip asks the remote where the branch is, without the clone's sync lock.
func (r *Repo) remoteTip(ctx context.Context) (plumbing.Hash, error) {
	if r.localPath != "" {
		return readLocalRef(r.localPath, r.branchRef)
	}
	sess, err := r.uploadPackSession()
	if err != nil {
		return plumbing.ZeroHash, r.red.err(err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, r.red.err(err)
	}
	return ar.References[r.branchRef.String()], nil
}
