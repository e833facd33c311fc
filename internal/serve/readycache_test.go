package serve

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A storm of readiness probes costs one check per readyTTL: probes that arrive
// while a check runs wait for its answer, and later ones reuse it until it is
// readyTTL old. A probe that gave up (its context done) leaves nothing cached.
func TestReadyCacheSpareTheRemote(t *testing.T) {
	var checks atomic.Int32
	release := make(chan struct{})
	now := time.Unix(1e9, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	down := errors.New("remote unreachable")
	c := &readyCache{ttl: readyTTL, now: clock, check: func(ctx context.Context) error {
		checks.Add(1)
		<-release
		return down
	}}

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.get(context.Background())
		}()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != down {
			t.Fatalf("a probe got %v, want the check's answer", err)
		}
	}
	if n := checks.Load(); n != 1 {
		t.Fatalf("100 probes ran %d checks, want 1", n)
	}
	advance(readyTTL - time.Millisecond)
	c.get(context.Background())
	if n := checks.Load(); n != 1 {
		t.Fatalf("a probe within readyTTL ran a check (%d)", n)
	}
	advance(time.Millisecond)
	c.get(context.Background())
	if n := checks.Load(); n != 2 {
		t.Fatalf("a probe readyTTL later did not check again (%d)", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	advance(readyTTL)
	c.get(ctx)
	c.get(context.Background())
	if n := checks.Load(); n != 4 {
		t.Fatalf("the answer of a probe that gave up was reused (%d checks, want 4)", n)
	}
	c.forget()
	c.get(context.Background())
	if n := checks.Load(); n != 5 {
		t.Fatalf("forget kept the answer (%d checks, want 5)", n)
	}
}
