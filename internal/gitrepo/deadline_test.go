package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/store"
)

// faultyRemote is an HTTP remote reached through a proxy that can black-hole, refuse
// or lose answers.
type faultyRemote struct {
	remote
	proxy *githttp.Proxy
}

func newFaultyRemote(t *testing.T) faultyRemote {
	t.Helper()
	rm := newRemote(t, "http")
	host := strings.TrimPrefix(strings.TrimSuffix(rm.url, "/fleet.git"), "http://")
	p, err := githttp.NewProxy(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	fr := faultyRemote{remote: rm, proxy: p}
	fr.url = "http://" + p.Addr() + "/fleet.git"
	return fr
}

const testDeadline = time.Second

// set injects a fault. The proxy drops the open connections; the pause lets the
// client's HTTP transport see its kept-alive one closed. Otherwise a push may be
// written on the dead connection and fail reading the answer, which the writer must
// (and does) take for an unknown outcome, not for the fault under test.
func (fr faultyRemote) set(f githttp.Fault, code int) {
	fr.proxy.Set(f, code)
	time.Sleep(100 * time.Millisecond)
}

// submitTimedOut submits a create and reports its result and how long the answer took.
func submitTimedOut(r *Repo, name string) (Result, time.Duration) {
	start := time.Now()
	res := r.Submit(context.Background(), change("local", name, ActionCreate, 1, "req-"+name))
	return res, time.Since(start)
}

// waitDecided asks FindRequest until the resolver has decided the request.
func waitDecided(t *testing.T, r *Repo, id string) RequestInfo {
	t.Helper()
	stop := time.Now().Add(time.Minute)
	for time.Now().Before(stop) {
		info, err := r.FindRequest(context.Background(), id)
		if err != nil {
			t.Fatalf("FindRequest %s: %v", id, err)
		}
		if info.State != RequestPending {
			return info
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("request %s still pending after a minute", id)
	return RequestInfo{}
}

// hasStore reports whether the remote's branch holds the store folder.
func hasStore(t *testing.T, rm remote, name string) bool {
	t.Helper()
	out := runGit(t, rm.bare, "ls-tree", "-r", "--name-only", "refs/heads/main", "--", store.Dir("local", name))
	return out != ""
}

// A black-holed remote: the push in flight when the deadline hits is answered "not
// known yet", a change still queued behind it "nothing landed"; once the remote
// answers again the resolver says failed, and the change never lands, not even when
// the next write moves the branch.
func TestBlackHoledRemoteAnswersByTheDeadline(t *testing.T) {
	fr := newFaultyRemote(t)
	r := open(t, fr.remote, func(o *Options) { o.WriteTimeout = testDeadline })
	head := remoteHead(t, fr.remote)
	fr.set(githttp.BlackHole, 0)

	var wg sync.WaitGroup
	var queuedRes Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Queued while the first push hangs: by its deadline the writer has not
		// taken it.
		time.Sleep(100 * time.Millisecond)
		queuedRes, _ = submitTimedOut(r, "queued")
	}()
	res, took := submitTimedOut(r, "shop")
	wg.Wait()
	t.Logf("black-holed push answered after %v: %v", took, res.Err)
	if !errors.Is(res.Err, ErrOutcomeUnknown) {
		t.Fatalf("push cut off in flight: got %+v, want ErrOutcomeUnknown", res)
	}
	if took > testDeadline+5*time.Second {
		t.Errorf("answered after %v, deadline %v", took, testDeadline)
	}
	if !errors.Is(queuedRes.Err, ErrNotPushed) && !errors.Is(queuedRes.Err, ErrOutcomeUnknown) {
		t.Fatalf("change queued behind the black hole: %+v", queuedRes)
	}
	if info, err := r.FindRequest(context.Background(), "req-shop"); err != nil || info.State != RequestPending {
		t.Fatalf("while the remote is black-holed: %+v, %v; want pending", info, err)
	}

	fr.set(githttp.Forward, 0)
	info := waitDecided(t, r, "req-shop")
	if info.State != RequestFailed || !strings.Contains(info.Reason, "nothing landed") {
		t.Fatalf("resolved: %+v, want failed, nothing landed", info)
	}
	if got := remoteHead(t, fr.remote); got != head {
		t.Fatalf("the branch moved from %s to %s", head, got)
	}
	// The next write moves the branch past the cut-off push's base: it can never land.
	mustOK(t, r.Submit(context.Background(), change("local", "next", ActionCreate, 1, "req-next")))
	if hasStore(t, fr.remote, "shop") {
		t.Fatal("a change answered failed landed later")
	}
	// And it may be sent again.
	mustOK(t, r.Submit(context.Background(), change("local", "shop", ActionCreate, 1, "req-shop-2")))
}

// A push whose answer is lost after the remote applied it: pending by the deadline,
// then committed with the commit that holds it.
func TestLostAnswerResolvesCommitted(t *testing.T) {
	fr := newFaultyRemote(t)
	r := open(t, fr.remote, func(o *Options) { o.WriteTimeout = testDeadline })
	fr.set(githttp.LoseAnswers, 0)
	res, took := submitTimedOut(r, "shop")
	t.Logf("push with a lost answer answered after %v: %v", took, res.Err)
	if !errors.Is(res.Err, ErrOutcomeUnknown) {
		t.Fatalf("got %+v, want ErrOutcomeUnknown", res)
	}
	landed := remoteHead(t, fr.remote)
	if !hasStore(t, fr.remote, "shop") {
		t.Fatal("the remote did not apply the push (the test proves nothing)")
	}
	fr.set(githttp.Forward, 0)
	info := waitDecided(t, r, "req-shop")
	if info.State != RequestCommitted || info.Commit != landed || info.Store != "shop" || info.Action != ActionCreate {
		t.Fatalf("resolved %+v, want committed at %s", info, landed)
	}
	// A retry is the duplicate it is.
	again := mustOK(t, r.Submit(context.Background(), change("local", "shop", ActionCreate, 1, "req-shop")))
	if !again.Duplicate || again.Commit != landed {
		t.Fatalf("retry: %+v", again)
	}
}

// Limbo outlives the process with an on-disk clone: a restart answers pending, then
// decides.
func TestPendingSurvivesRestart(t *testing.T) {
	fr := newFaultyRemote(t)
	dir := t.TempDir() + "/clone.git"
	r, err := Open(context.Background(), Options{URL: fr.url, Dir: dir, WriteTimeout: testDeadline})
	if err != nil {
		t.Fatal(err)
	}
	fr.set(githttp.BlackHole, 0)
	if res, _ := submitTimedOut(r, "shop"); !errors.Is(res.Err, ErrOutcomeUnknown) {
		t.Fatalf("got %+v, want ErrOutcomeUnknown", res)
	}
	r.Close()
	// The restart clones through the proxy, so it answers again.
	fr.set(githttp.Forward, 0)
	r2 := open(t, fr.remote, func(o *Options) { o.Dir = dir; o.WriteTimeout = testDeadline })
	info := waitDecided(t, r2, "req-shop")
	if info.State != RequestFailed {
		t.Fatalf("after restart: %+v, want failed", info)
	}
}

// A remote that refuses the connection, or answers an HTTP error: certain that
// nothing landed, answered at once with the cause.
func TestRefusingRemote(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(*githttp.Proxy)
		want  error
		cause store.Cause
	}{
		{"closed port", func(p *githttp.Proxy) { p.Down(); time.Sleep(100 * time.Millisecond) }, ErrUnreachable, store.CauseRemoteUnreachable},
		{"403", func(p *githttp.Proxy) { p.Set(githttp.Status, 403); time.Sleep(100 * time.Millisecond) }, ErrRefused, store.CauseRemoteRefused},
		{"500", func(p *githttp.Proxy) { p.Set(githttp.Status, 500); time.Sleep(100 * time.Millisecond) }, ErrRefused, store.CauseRemoteRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := newFaultyRemote(t)
			r := open(t, fr.remote, func(o *Options) { o.WriteTimeout = 5 * time.Second })
			head := remoteHead(t, fr.remote)
			tc.fault(fr.proxy)
			res, took := submitTimedOut(r, "shop")
			t.Logf("%s: answered after %v: %v", tc.name, took, res.Err)
			if !errors.Is(res.Err, tc.want) {
				t.Fatalf("got %+v, want %v", res, tc.want)
			}
			_, err := Fleet{R: r}.Submit(context.Background(), store.Change{Store: "shop2", Cluster: "local",
				Action: store.ActionCreate, RequestID: "req-shop2", Dir: store.Dir("local", "shop2"),
				Files: []store.File{{Path: store.Dir("local", "shop2") + "/a.yaml", Content: []byte("a: 1\n")}}})
			if store.ErrorCode(err) != store.EUNAVAILABLE || store.ErrorCause(err) != tc.cause {
				t.Fatalf("through the port: %v (code %s, cause %s), want unavailable, %s", err, store.ErrorCode(err), store.ErrorCause(err), tc.cause)
			}
			if got := remoteHead(t, fr.remote); got != head {
				t.Fatalf("the branch moved from %s to %s", head, got)
			}
			if err := fr.proxy.Up(); err != nil {
				t.Fatal(err)
			}
			fr.set(githttp.Forward, 0)
			mustOK(t, r.Submit(context.Background(), change("local", "shop", ActionCreate, 1, "req-shop-again")))
		})
	}
}

// Eight writers on one remote, each with its own clone, creating at once: every
// create lands, none fails for the contention (with a fixed count of 10 retries one
// in a few runs failed "the remote branch kept moving"). Over HTTP the remote's
// receive-pack serializes them; on a path remote, its ref lock.
func TestContentionBetweenWriters(t *testing.T) {
	for _, kind := range []string{"http", "path"} {
		t.Run(kind, func(t *testing.T) {
			rm := newRemote(t, kind)
			const writers, per = 8, 15
			var ws []*Repo
			for range writers {
				// The deadline is not what this test is about: at 30 s, writers that kept
				// losing to the others ran out of it on a machine loaded with other test
				// packages (load average ~15), their creates answered "not pushed".
				ws = append(ws, open(t, rm, func(o *Options) { o.WriteTimeout = 2 * time.Minute }))
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers*per)
			for i := 0; i < per; i++ {
				for j, r := range ws {
					wg.Add(1)
					go func() {
						defer wg.Done()
						name := fmt.Sprintf("w%d-%d", j, i)
						if res := r.Submit(context.Background(), change("local", name, ActionCreate, 1, "req-"+name)); res.Err != nil {
							errs <- fmt.Errorf("%s: %w", name, res.Err)
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			for j := 0; j < writers; j++ {
				for i := 0; i < per; i++ {
					if name := fmt.Sprintf("w%d-%d", j, i); !hasStore(t, rm, name) {
						t.Errorf("%s is not on the branch", name)
					}
				}
			}
		})
	}
}

// A request this clone never wrote, beyond the Request-Id index's reach, is found by
// the bounded walk of the history.
func TestFindRequestFromTrailers(t *testing.T) {
	rm := newRemote(t, "http")
	w := open(t, rm)
	first := mustOK(t, w.Submit(context.Background(), change("local", "old", ActionCreate, 1, "req-old")))
	for i := 0; i < 5; i++ {
		mustOK(t, w.Submit(context.Background(), change("local", fmt.Sprintf("s%d", i), ActionCreate, 1, fmt.Sprintf("req-%d", i))))
	}
	// Indexes only the newest commit at start.
	r := open(t, rm, func(o *Options) { o.IdempotencyDepth = 1 })
	if _, err := r.FindRequest(context.Background(), "req-old"); !r.historyComplete() && !errors.Is(err, ErrHistoryLoading) {
		t.Fatalf("a request behind the shallow start's boundary: %v, want ErrHistoryLoading", err)
	}
	waitFor(t, "the history behind the shallow start", r.historyComplete)
	if _, _, ok := r.idx.lookupID("req-old"); ok {
		t.Fatal("the index holds the old request (the test proves nothing)")
	}
	info, err := r.FindRequest(context.Background(), "req-old")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != RequestCommitted || info.Commit != first.Commit || info.Store != "old" || info.Cluster != "local" ||
		info.Action != ActionCreate || info.Time.IsZero() {
		t.Fatalf("found %+v, want committed at %s", info, first.Commit)
	}
	if _, err := r.FindRequest(context.Background(), "req-never"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown request: %v", err)
	}
}
