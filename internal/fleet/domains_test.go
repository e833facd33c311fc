package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/store"
)

// After a restart only the folder names are known; a store's domain is known once
// its folder is read. A create taking the domain of a store not read yet waits for
// the warm-up rather than letting the domain go twice, and once every store is
// read, creates cost no folder read at all, whatever the fleet's size.
func TestDomainOfAStoreNotReadYet(t *testing.T) {
	r := newMemRepo()
	for i := range 50 {
		seed(t, r, shop(fmt.Sprintf("old-%02d", i), ""))
	}
	seed(t, r, shop("custom", "taken.example.com"))
	r.gate = make(chan struct{}) // every folder read waits: the warm-up has not got far
	svc := newService(t, r)

	done := make(chan error, 1)
	go func() {
		_, err := svc.Create(context.Background(), shop("newcomer", "taken.example.com"), meta())
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the domain check answered before the store holding the domain was read: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	r.mu.Lock()
	close(r.gate)
	r.gate = nil
	r.mu.Unlock()
	err := <-done
	if store.ErrorCode(err) != store.EINVALID || fieldRule(err, "domain") != "unique" {
		t.Fatalf("create with the domain of an unread store: %v", err)
	}
	svc.WaitLoaded()

	reads := r.reads.Load()
	for i := range 20 {
		if _, err := svc.Create(context.Background(), shop(fmt.Sprintf("new-%02d", i), fmt.Sprintf("n%d.example.com", i)), meta()); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.reads.Load() - reads; got != 0 {
		t.Fatalf("20 creates read %d store folders; the domain check must answer from the index", got)
	}

	// A push from outside adds a store with a custom domain; the shard's resync
	// lists it unread. The next domain check reads that one folder, and no other.
	seed(t, r, shop("pushed", "outside.example.com"))
	if _, err := svc.Resync(context.Background(), shardPrefix("pushed")); err != nil {
		t.Fatal(err)
	}
	reads = r.reads.Load()
	_, err = svc.Create(context.Background(), shop("late", "outside.example.com"), meta())
	if fieldRule(err, "domain") != "unique" {
		t.Fatalf("create with the domain of a store pushed from outside: %v", err)
	}
	if got := r.reads.Load() - reads; got != 1 {
		t.Fatalf("the check read %d folders, want the one pushed", got)
	}
}

// If the warm-up takes longer than a request may wait, the answer is 503-worthy
// (EUNAVAILABLE: retry later), never a guess; nothing is committed.
func TestDomainCheckDoesNotGuess(t *testing.T) {
	defer fleet.SetDomainWait(100 * time.Millisecond)()
	r := newMemRepo()
	seed(t, r, shop("old", ""))
	r.gate = make(chan struct{})
	svc := newService(t, r)
	defer close(r.gate)
	_, err := svc.Create(context.Background(), shop("fresh", ""), meta())
	if store.ErrorCode(err) != store.EUNAVAILABLE {
		t.Fatalf("create while the index is unread: %v", err)
	}
	if r.commitCount() != 0 {
		t.Fatal("a create that could not be checked was committed")
	}
}

// Only an active store holds its domain: a deleted one's release (and Ingress) is
// gone, and after a restart its files no longer say its domain, so holding it
// before a restart and not after would make the answer depend on uptime.
func TestDeletedStoreFreesItsDomain(t *testing.T) {
	r := newMemRepo()
	svc := newService(t, r)
	ctx := context.Background()
	if _, err := svc.Create(ctx, shop("first", "shop.example.com"), meta()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, shop("second", "shop.example.com"), meta()); fieldRule(err, "domain") != "unique" {
		t.Fatalf("second store on one domain: %v", err)
	}
	if _, err := svc.Delete(ctx, "first", false, meta()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, shop("second", "shop.example.com"), meta()); err != nil {
		t.Fatalf("the domain of a deleted store: %v", err)
	}
	// An update that keeps the domain is no claim on it; changing to a taken one is
	// refused, to one's own default allowed.
	if _, err := svc.Create(ctx, shop("third", "third.example.com"), meta()); err != nil {
		t.Fatal(err)
	}
	to := func(d string) func(store.Store) (store.Store, error) {
		return func(s store.Store) (store.Store, error) { s.Domain = d; return s, nil }
	}
	if _, err := svc.Update(ctx, "third", to("shop.example.com"), meta()); fieldRule(err, "domain") != "unique" {
		t.Fatalf("update to a taken domain: %v", err)
	}
	if _, err := svc.Update(ctx, "third", to("second.stores.localhost"), meta()); fieldRule(err, "domain") != "unique" {
		t.Fatalf("update to another name's default domain: %v", err)
	}
	if _, err := svc.Update(ctx, "third", to("third.stores.localhost"), meta()); err != nil {
		t.Fatalf("update to its own default domain: %v", err)
	}
	// The domain it left is free again.
	if _, err := svc.Create(ctx, shop("fourth", "third.example.com"), meta()); err != nil {
		t.Fatalf("a domain given up by an update: %v", err)
	}
}

type charts struct {
	versions []string
	err      error
}

func (c charts) Versions(context.Context, store.Engine) ([]string, error) { return c.versions, c.err }

// A new store's cluster must be one this service writes for; a version must be one
// the chart source offers, where it can tell. Every problem comes in one answer.
func TestClustersAndVersions(t *testing.T) {
	ctx := context.Background()
	r := newMemRepo()
	svc := newService(t, r, func(c *fleet.Config) {
		c.Clusters = []string{"eu-1"}
		c.Charts = charts{versions: []string{"0.1.0", "0.2.0"}}
	})
	s := shop("shop", "")
	s.Cluster, s.Version = "us-9", "0.3.0"
	_, err := svc.Create(ctx, s, meta())
	if fieldRule(err, "cluster") != "oneOf" || fieldRule(err, "version") != "oneOf" {
		t.Fatalf("unknown cluster and version: %v", err)
	}
	for _, f := range store.FieldErrors(err) {
		if f.Field == "cluster" && f.Message != "cluster must be one this API writes stores for: eu-1, local" {
			t.Errorf("cluster message %q", f.Message)
		}
	}
	s.Cluster, s.Version = "eu-1", "0.2.0"
	if _, err := svc.Create(ctx, s, meta()); err != nil {
		t.Fatal(err)
	}
	version := func(v string) func(store.Store) (store.Store, error) {
		return func(s store.Store) (store.Store, error) { s.Version = v; return s, nil }
	}
	if _, err := svc.Update(ctx, "shop", version("9.9.9"), meta()); fieldRule(err, "version") != "oneOf" {
		t.Fatalf("update to a version not offered: %v", err)
	}
	if r.commitCount() != 1 {
		t.Fatalf("%d commits, want the one create", r.commitCount())
	}

	// A source that cannot tell accepts any version; one that cannot be read now
	// refuses for now (EUNAVAILABLE), committing nothing.
	unknown := newService(t, newMemRepo(), func(c *fleet.Config) { c.Charts = charts{err: store.ErrVersionsUnknown} })
	s = shop("any", "")
	s.Version = "7.7.7"
	if _, err := unknown.Create(ctx, s, meta()); err != nil {
		t.Fatalf("a source that cannot tell: %v", err)
	}
	down := newService(t, newMemRepo(), func(c *fleet.Config) { c.Charts = charts{err: errors.New("connection refused")} })
	if _, err := down.Create(ctx, s, meta()); store.ErrorCode(err) != store.EUNAVAILABLE {
		t.Fatalf("a source that cannot be read: %v", err)
	}
}
