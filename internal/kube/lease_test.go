package kube

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Three replicas compete for one Lease on a real kube-apiserver: one leads at a
// time, the Lease names it, and when it stops the Lease is released and another
// takes over without waiting for it to expire.
func TestElectorOneLeaderAtATimeAndHandover(t *testing.T) {
	ns := namespace(t, "lease-handover")
	var (
		mu      sync.Mutex
		leading = map[string]bool{}
		most    int
		started = make(chan string, 16)
	)
	lead := func(id string) func(ctx context.Context) {
		return func(ctx context.Context) {
			mu.Lock()
			leading[id] = true
			most = max(most, len(leading))
			mu.Unlock()
			started <- id
			<-ctx.Done()
			mu.Lock()
			delete(leading, id)
			mu.Unlock()
		}
	}
	// A long Duration: a handover within it can only come from the release.
	cfg := LeaseConfig{Rest: apiConfig, Namespace: ns, Name: "publisher", Duration: 5 * time.Minute, RenewDeadline: 4 * time.Minute, RetryPeriod: 200 * time.Millisecond}
	stops := map[string]func(){}
	dones := map[string]chan struct{}{}
	for i := range 3 {
		id := fmt.Sprintf("replica-%d", i)
		c := cfg
		c.Identity = id
		e, err := NewElector(c, lead(id))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.Run(ctx) }()
		stops[id], dones[id] = cancel, done
	}
	t.Cleanup(func() {
		for id, stop := range stops {
			stop()
			<-dones[id]
		}
	})
	holder := func() string {
		l, err := coordinationv1.NewForConfigOrDie(apiConfig).Leases(ns).Get(context.Background(), "publisher", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	wait := func() string {
		select {
		case id := <-started:
			return id
		case <-time.After(time.Minute):
			t.Fatal("no replica took the Lease within a minute")
			return ""
		}
	}
	first := wait()
	if h := holder(); h != first {
		t.Fatalf("the Lease names %q, but %q leads", h, first)
	}
	stops[first]()
	<-dones[first]
	second := wait()
	if second == first {
		t.Fatalf("the stopped replica %s led again", first)
	}
	if h := holder(); h != second {
		t.Fatalf("after the handover the Lease names %q, but %q leads", h, second)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 1 {
		t.Fatalf("%d replicas led at once", most)
	}
	if len(leading) != 1 || !leading[second] {
		t.Fatalf("leading now: %v, want only %s", leading, second)
	}
}
