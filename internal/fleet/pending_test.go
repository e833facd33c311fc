package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/store"
)

// cutRepo stands for a repository whose pushes the write deadline cuts off: every
// Submit's outcome is unknown, and FindRequest answers what the test decides, as
// the resolver would.
type cutRepo struct {
	*memRepo
	mu    sync.Mutex
	found map[string]store.Found
	asked int
}

func (r *cutRepo) Submit(ctx context.Context, c store.Change) (store.Commit, error) {
	if _, ok := ctx.Deadline(); !ok {
		return store.Commit{}, errors.New("the write has no deadline")
	}
	return store.Commit{}, fmt.Errorf("%w: cut off", store.ErrOutcomeUnknown)
}

func (r *cutRepo) FindRequest(ctx context.Context, id string) (store.Found, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	if f, ok := r.found[id]; ok {
		return f, nil
	}
	return store.Found{State: store.RequestPending}, nil
}

func (r *cutRepo) decide(id string, f store.Found) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.found[id] = f
}

// A write whose outcome is unknown is accepted as pending, stays pending across a
// restart (the request log keeps it), and takes the repository's decision once there
// is one, which the log then keeps too.
func TestPendingRequestAcrossRestart(t *testing.T) {
	repo := &cutRepo{memRepo: newMemRepo(), found: map[string]store.Found{}}
	logPath := filepath.Join(t.TempDir(), "requests.jsonl")
	withRepo := func(c *fleet.Config) {
		c.Repo, c.RequestLog, c.WriteTimeout = repo, logPath, time.Second
	}
	svc := newService(t, nil, withRepo)
	m := meta()
	out, err := svc.Create(context.Background(), shop("cut", ""), m)
	if err != nil || out.State != store.RequestPending || out.RequestID != m.RequestID {
		t.Fatalf("cut-off create: %+v, %v; want pending", out, err)
	}
	if got, err := svc.Request(context.Background(), m.RequestID); err != nil || got.State != store.RequestPending {
		t.Fatalf("request: %+v, %v; want pending", got, err)
	}
	svc.Close()

	svc = newService(t, nil, withRepo)
	if got, err := svc.Request(context.Background(), m.RequestID); err != nil || got.State != store.RequestPending || got.Store != "cut" {
		t.Fatalf("after restart: %+v, %v; want pending", got, err)
	}
	commit := store.Commit{SHA: fmt.Sprintf("%040x", 7), Time: time.Unix(7, 0).UTC()}
	repo.decide(m.RequestID, store.Found{State: store.RequestCommitted, Store: "cut", Cluster: store.DefaultCluster, Action: store.ActionCreate, Commit: &commit})
	got, err := svc.Request(context.Background(), m.RequestID)
	if err != nil || got.State != store.RequestCommitted || got.Commit == nil || got.Commit.SHA != commit.SHA {
		t.Fatalf("decided: %+v, %v; want committed at %s", got, err, commit.SHA)
	}
	svc.Close()

	// The decision is in the log: the next process does not need to ask.
	repo.mu.Lock()
	repo.found = map[string]store.Found{}
	asked := repo.asked
	repo.mu.Unlock()
	svc = newService(t, nil, withRepo)
	if got, err := svc.Request(context.Background(), m.RequestID); err != nil || got.State != store.RequestCommitted {
		t.Fatalf("after a second restart: %+v, %v; want committed", got, err)
	}
	if repo.asked != asked {
		t.Fatalf("asked the repository again about a decided request")
	}
}

// A pending request the repository decides failed (nothing landed) says so, and its
// Idempotency-Key may be used again: the retry really runs.
func TestFailedPendingRequestMaySendAgain(t *testing.T) {
	repo := &cutRepo{memRepo: newMemRepo(), found: map[string]store.Found{}}
	svc := newService(t, nil, func(c *fleet.Config) { c.Repo = repo })
	m := meta()
	m.ClientKey = true
	if out, err := svc.Create(context.Background(), shop("again", ""), m); err != nil || out.State != store.RequestPending {
		t.Fatalf("cut-off create: %+v, %v", out, err)
	}
	repo.decide(m.RequestID, store.Found{State: store.RequestFailed, Store: "again", Action: store.ActionCreate, Reason: "nothing landed"})
	got, err := svc.Request(context.Background(), m.RequestID)
	if err != nil || got.State != store.RequestFailed || got.Reason != "nothing landed" || got.ErrCode != store.EUNAVAILABLE {
		t.Fatalf("decided: %+v, %v; want failed", got, err)
	}
	// The retry reaches the repository again (which still cuts it off).
	if out, err := svc.Create(context.Background(), shop("again", ""), m); err != nil || out.State != store.RequestPending {
		t.Fatalf("sent again: %+v, %v; want a new attempt, pending", out, err)
	}
}
