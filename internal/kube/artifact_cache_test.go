package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// apiCounter counts the requests a client makes for ExternalArtifacts, apart from
// watches, and the bytes their answers carry.
type apiCounter struct {
	mu       sync.Mutex
	requests []string
	bytes    int64
}

func (c *apiCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(r)
		if !strings.Contains(r.URL.Path, "/externalartifacts") || r.URL.Query().Get("watch") == "true" {
			return resp, err
		}
		c.mu.Lock()
		c.requests = append(c.requests, r.Method+" "+r.URL.RequestURI())
		c.mu.Unlock()
		if err == nil {
			resp.Body = &countingBody{ReadCloser: resp.Body, c: c}
		}
		return resp, err
	})
}

func (c *apiCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests, c.bytes = nil, 0
}

func (c *apiCounter) read() ([]string, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.requests...), c.bytes
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type countingBody struct {
	io.ReadCloser
	c *apiCounter
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.mu.Lock()
	b.c.bytes += int64(n)
	b.c.mu.Unlock()
	return n, err
}

// TestPublishedArtifactsFromTheCache: the publisher's pass reads what is published
// from the watcher's ExternalArtifacts informer, not the API server. Before Start one
// LIST answers (the first pass runs before the watcher starts); once the informer has
// listed, twenty passes make no request for ExternalArtifacts at all, answer what the
// LIST answered, field for field, and see a later publish.
func TestPublishedArtifactsFromTheCache(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "published-cache")
	counter := &apiCounter{}
	rc := rest.CopyConfig(apiConfig)
	rc.WrapTransport = counter.wrap
	w, err := New(Config{Rest: rc, FluxNamespace: ns, ProbeInterval: 50 * time.Millisecond}, nopSink{})
	if err != nil {
		t.Fatal(err)
	}
	const shards = 64
	for i := range shards {
		shard := fmt.Sprintf("%03x", i*61)
		if err := w.PublishArtifact(ctx, shard, testArtifact(strings.Repeat(fmt.Sprintf("%x", i%16), 40))); err != nil {
			t.Fatal(err)
		}
	}

	counter.reset()
	listed, err := w.PublishedArtifacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reqs, listBytes := counter.read()
	if len(listed) != shards || len(reqs) != 1 || !strings.HasPrefix(reqs[0], "GET ") {
		t.Fatalf("before Start: %d artifacts from requests %v; want %d from one LIST", len(listed), reqs, shards)
	}
	t.Logf("one LIST of %d ExternalArtifacts: %d bytes (%d a shard)", shards, listBytes, listBytes/shards)

	w.Start()
	defer w.Stop()
	for deadline := time.Now().Add(time.Minute); w.Check() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("watcher never synced: %v", w.Check())
		}
	}
	counter.reset()
	for range 20 {
		cached, err := w.PublishedArtifacts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(cached) != len(listed) {
			t.Fatalf("from the cache: %d artifacts, the LIST %d", len(cached), len(listed))
		}
		for shard, a := range listed {
			if c, ok := cached[shard]; !ok || !sameArtifact(c, a) {
				t.Fatalf("shard %s from the cache %+v, from the LIST %+v", shard, c, a)
			}
		}
	}
	if reqs, n := counter.read(); len(reqs) != 0 {
		t.Fatalf("20 passes from the cache made %d requests (%d bytes): %v", len(reqs), n, reqs)
	}

	// A later publish reaches the cache through the watch.
	next := testArtifact("8888888888888888888888888888888888888888")
	if err := w.PublishArtifact(ctx, "000", next); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		got, err := w.PublishedArtifacts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sameArtifact(got["000"], next) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache still has %+v for shard 000, want %+v", got["000"], next)
		}
	}
}

// BenchmarkPublishedArtifacts: what one publisher pass costs to read back 256
// published artifacts, by a LIST (before Start) and from the informer's cache.
func BenchmarkPublishedArtifacts(b *testing.B) {
	ctx := context.Background()
	ns := namespace(b, fmt.Sprintf("published-bench-%d", time.Now().UnixNano()))
	counter := &apiCounter{}
	rc := rest.CopyConfig(apiConfig)
	rc.WrapTransport = counter.wrap
	newWatcher := func() *Watcher {
		w, err := New(Config{Rest: rc, FluxNamespace: ns, ProbeInterval: 50 * time.Millisecond}, nopSink{})
		if err != nil {
			b.Fatal(err)
		}
		return w
	}
	const shards = 256
	w := newWatcher()
	for i := range shards {
		if err := w.PublishArtifact(ctx, fmt.Sprintf("%03x", i*16), testArtifact(strings.Repeat(fmt.Sprintf("%x", i%16), 40))); err != nil {
			b.Fatal(err)
		}
	}
	run := func(b *testing.B, w *Watcher) {
		counter.reset()
		b.ReportAllocs()
		for b.Loop() {
			got, err := w.PublishedArtifacts(ctx)
			if err != nil || len(got) != shards {
				b.Fatalf("%d artifacts, %v", len(got), err)
			}
		}
		reqs, n := counter.read()
		b.ReportMetric(float64(len(reqs))/float64(b.N), "requests/op")
		b.ReportMetric(float64(n)/float64(b.N), "apiBytes/op")
	}
	b.Run("list", func(b *testing.B) { run(b, w) })
	b.Run("cache", func(b *testing.B) {
		cw := newWatcher()
		cw.Start()
		defer cw.Stop()
		for deadline := time.Now().Add(time.Minute); cw.Check() != nil; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("watcher never synced: %v", cw.Check())
			}
		}
		run(b, cw)
	})
}
