package serve

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// readCounter is the fleet repository with every store folder read counted.
type readCounter struct {
	gitrepo.Fleet
	reads atomic.Int64
}

func (c *readCounter) ReadDir(ctx context.Context, dir string) (string, []store.File, error) {
	c.reads.Add(1)
	return c.Fleet.ReadDir(ctx, dir)
}

// The follower sees this replica's own commits pass like anyone's. It must not read
// their folders again (under a burst of creates that re-read, with its YAML parse,
// cost about as much CPU as rendering the stores, and held the store index's lock
// while parsing), yet still tell the hooks of them; a folder another writer changed,
// or created, is read, and the index shows what that writer left.
func TestFollowerSkipsOwnCommits(t *testing.T) {
	ctx := context.Background()
	url, _ := githttp.ServeFleet(t)
	r := render.Renderer{Options: render.LocalOptions()}
	replica := func() (*gitrepo.Repo, *readCounter, *fleet.Service) {
		repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { repo.Close() })
		counted := &readCounter{Fleet: gitrepo.Fleet{R: repo}}
		svc, err := fleet.New(ctx, fleet.Config{Repo: counted, Renderer: r})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
		svc.WaitLoaded()
		return repo, counted, svc
	}
	repo, counted, svc := replica()
	fl := newFollower(repo, svc, time.Hour, slog.New(slog.DiscardHandler))
	var told []string
	fl.onChange(func(_ context.Context, names, _ []string) { told = append(told, names...) })
	create := func(svc *fleet.Service, name string) {
		t.Helper()
		if _, err := svc.Create(ctx, store.Store{Name: name, Engine: store.WooCommerce, Plan: store.Basic,
			Settings: store.Settings{AdminEmail: "o@example.com"}}, store.Meta{Actor: "t", RequestID: "create-" + name}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}

	own := []string{"own-a", "own-b", "own-c"}
	for _, n := range own {
		create(svc, n)
	}
	before := counted.reads.Load()
	fl.catchUp(ctx)
	if got := counted.reads.Load() - before; got != 0 {
		t.Errorf("the follower read %d store folders after this replica's own %d creates, want none", got, len(own))
	}
	slices.Sort(told) // in the order of their folders
	if !reflect.DeepEqual(told, own) {
		t.Errorf("hooks told of %v after the own creates, want %v", told, own)
	}

	// Another replica changes one of them and creates one more.
	_, _, other := replica()
	if _, err := other.Update(ctx, "own-b", func(s store.Store) (store.Store, error) {
		s.Plan = store.Premium
		return s, nil
	}, store.Meta{Actor: "t", RequestID: "patch-own-b"}); err != nil {
		t.Fatal(err)
	}
	create(other, "theirs")
	if err := fl.fetches.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	told = nil
	before = counted.reads.Load()
	fl.catchUp(ctx)
	if got := counted.reads.Load() - before; got != 2 {
		t.Errorf("the follower read %d store folders after another replica changed one and created one, want 2", got)
	}
	slices.Sort(told)
	if want := []string{"own-b", "theirs"}; !reflect.DeepEqual(told, want) {
		t.Errorf("hooks told of %v, want %v", told, want)
	}
	if v, err := svc.Get(ctx, "own-b"); err != nil || v.Store.Plan != store.Premium {
		t.Errorf("own-b after the other replica's change: plan %q, %v; want %q", v.Store.Plan, err, store.Premium)
	}
	if _, err := svc.Get(ctx, "theirs"); err != nil {
		t.Errorf("the other replica's store: %v", err)
	}
	if v, err := svc.Get(ctx, "own-a"); err != nil || v.Store.Plan != store.Basic {
		t.Errorf("own-a: plan %q, %v", v.Store.Plan, err)
	}
}
