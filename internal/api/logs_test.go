package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/store"
)

// fakeLogs is the logs port (internal/kube reads real Pods; its tests run them).
// It records what it was asked and answers with lines naming the store, no
// Pods for a store named no-pods, and, on follow, a line then nothing until the
// request's context ends.
type fakeLogs struct {
	mu    sync.Mutex
	asked []store.LogOptions
	ended chan struct{} // closed when a follow's context ended
}

func newFakeLogs() *fakeLogs { return &fakeLogs{ended: make(chan struct{})} }

func (f *fakeLogs) StoreLogs(ctx context.Context, s store.Store, o store.LogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	f.asked = append(f.asked, o)
	f.mu.Unlock()
	if s.Name == "no-pods" {
		return nil, fmt.Errorf("component %s: %w", o.Component, store.ErrNoRunningPods)
	}
	if !o.Follow {
		return io.NopCloser(strings.NewReader(s.Name + "-wordpress-1/wordpress hello\n" + s.Name + "-mysql-0/mysql ready\n")), nil
	}
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(s.Name + "-wordpress-1/wordpress first\n"))
		<-ctx.Done()
		close(f.ended)
		_ = pw.Close()
	}()
	return pr, nil
}

func (f *fakeLogs) last() store.LogOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[len(f.asked)-1]
}

// Bad parameters are 400 problems naming the parameter and the rule; good ones
// reach the port as asked.
func TestStoreLogsParameters(t *testing.T) {
	logs := newFakeLogs()
	e := newEnvWith(t, api.Options{Logs: logs})
	e.expect(e.do("POST", "/api/v1/stores", shop("shop")), http.StatusAccepted)
	for _, c := range []struct{ query, field, rule string }{
		{"component=medusa", "component", "enum"}, // a medusa component on a woocommerce store
		{"component=", "component", "enum"},
		{"tailLines=0", "tailLines", "range"},
		{"tailLines=-3", "tailLines", "range"},
		{"tailLines=10001", "tailLines", "range"},
		{"tailLines=ten", "tailLines", "range"},
		{"since=yesterday", "since", "duration"},
		{"since=-5m", "since", "duration"},
		{"since=0s", "since", "duration"},
		{"follow=maybe", "follow", "boolean"},
		{"tailLines=5&tailLines=6", "tailLines", "single"},
		{"container=wordpress", "container", "unknown"},
	} {
		p := e.expect(e.do("GET", "/api/v1/stores/shop/logs?"+c.query, nil), http.StatusBadRequest)
		errs, _ := p["errors"].([]any)
		if p["type"] != "urn:storefleet:problem:invalid-query" || len(errs) != 1 {
			t.Errorf("%s: %v", c.query, p)
			continue
		}
		fe := errs[0].(map[string]any)
		if fe["field"] != c.field || fe["rule"] != c.rule {
			t.Errorf("%s: field %v rule %v, want %s %s", c.query, fe["field"], fe["rule"], c.field, c.rule)
		}
	}
	p := e.expect(e.do("GET", "/api/v1/stores/shop/logs?component=redis", nil), http.StatusBadRequest)
	if d := fmt.Sprint(p["detail"]); !strings.Contains(d, "wordpress, mysql") {
		t.Errorf("the enum's detail does not list the engine's components: %s", d)
	}
	if n := len(logs.asked); n != 0 {
		t.Fatalf("bad requests reached the port %d times", n)
	}

	for _, c := range []struct {
		query string
		want  store.LogOptions
	}{
		{"", store.LogOptions{TailLines: store.DefaultTailLines}},
		{"since=15m", store.LogOptions{Since: 15 * time.Minute}},
		{"component=mysql&tailLines=10000&since=1h30m&follow=false", store.LogOptions{Component: "mysql", TailLines: 10000, Since: 90 * time.Minute}},
		{"component=wordpress&tailLines=1", store.LogOptions{Component: "wordpress", TailLines: 1}},
	} {
		r := e.do("GET", "/api/v1/stores/shop/logs?"+c.query, nil)
		if r.status != http.StatusOK || string(r.body) != "shop-wordpress-1/wordpress hello\nshop-mysql-0/mysql ready\n" ||
			r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: %d %q %s", c.query, r.status, r.header.Get("Content-Type"), r.body)
		}
		if got := logs.last(); got != c.want {
			t.Errorf("%s: the port was asked %+v, want %+v", c.query, got, c.want)
		}
	}

	// HEAD answers as GET would, without holding a follow open.
	if r := e.do("HEAD", "/api/v1/stores/shop/logs?follow=true", nil); r.status != http.StatusOK || len(r.body) != 0 ||
		r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("HEAD: %d %q %q", r.status, r.header.Get("Content-Type"), r.body)
	}

	p = e.expect(e.do("GET", "/api/v1/stores/ghost/logs", nil), http.StatusNotFound)
	if p["type"] != "urn:storefleet:problem:not-found" {
		t.Errorf("unknown store: %v", p)
	}
	e.expect(e.do("POST", "/api/v1/stores", shop("no-pods")), http.StatusAccepted)
	p = e.expect(e.do("GET", "/api/v1/stores/no-pods/logs?component=mysql", nil), http.StatusConflict)
	if p["type"] != "urn:storefleet:problem:no-running-pods" || p["detail"] != "the store has no running pods of component mysql" {
		t.Errorf("no pods: %v", p)
	}
}

// Without a cluster there are no logs to read.
func TestStoreLogsWithoutCluster(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", shop("shop")), http.StatusAccepted)
	p := e.expect(e.do("GET", "/api/v1/stores/shop/logs", nil), http.StatusNotFound)
	if p["type"] != "urn:storefleet:problem:no-cluster" {
		t.Errorf("%v", p)
	}
}

// A follow is sent as it is read, and ends with its lifetime or when the client
// leaves; either way the read behind it is told to stop.
func TestStoreLogsFollow(t *testing.T) {
	for _, c := range []struct {
		name     string
		lifetime time.Duration
		leave    bool
	}{{"the lifetime ends it", 300 * time.Millisecond, false}, {"the client leaves", time.Hour, true}} {
		t.Run(c.name, func(t *testing.T) {
			logs := newFakeLogs()
			e := newEnvWith(t, api.Options{Logs: logs, LogFollowLifetime: c.lifetime})
			e.expect(e.do("POST", "/api/v1/stores", shop("shop")), http.StatusAccepted)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.api.URL+"/api/v1/stores/shop/logs?follow=true", nil)
			res, err := e.api.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			// The first line arrives while the stream is open (it was flushed).
			buf := make([]byte, 64)
			n, err := io.ReadAtLeast(res.Body, buf, len("shop-wordpress-1/wordpress first\n"))
			if err != nil || string(buf[:n]) != "shop-wordpress-1/wordpress first\n" {
				t.Fatalf("first line: %q %v", buf[:n], err)
			}
			if c.leave {
				cancel()
			} else if rest, err := io.ReadAll(res.Body); err != nil || len(rest) != 0 {
				t.Fatalf("after the lifetime: %q %v", rest, err)
			}
			select {
			case <-logs.ended:
			case <-time.After(time.Minute):
				t.Fatal("the port's read was never told to stop")
			}
			if got := logs.last(); !got.Follow || got.TailLines != store.DefaultTailLines {
				t.Errorf("asked %+v", got)
			}
		})
	}
}
