package api

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// readEvents reads one SSE response until it ends, returning "event:phase" or
// "event:reason" items and the ids.
func readEvents(t *testing.T, resp *http.Response, stop int) (items, ids []string) {
	t.Helper()
	sc := bufio.NewScanner(resp.Body)
	typ := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = line[7:]
		case strings.HasPrefix(line, "id: "):
			ids = append(ids, line[4:])
		case strings.HasPrefix(line, "data: "):
			data := line[6:]
			key := `"phase":"`
			if typ == "event" {
				key = `"reason":"`
			}
			i := strings.Index(data, key)
			if i < 0 {
				t.Fatalf("event without %s: %s", key, data)
			}
			v := data[i+len(key):]
			items = append(items, typ+":"+v[:strings.IndexByte(v, '"')])
			if len(items) == stop {
				return items, ids
			}
		}
	}
	return items, ids
}

func TestStoreEventStream(t *testing.T) {
	tr := status.New(status.Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("x", "main@sha1:c1")
	tr.Load("shop", status.Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0", Shard: "x"})
	srv := httptest.NewServer(Handler(nil, Options{Status: tr}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/v1/stores/shop/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for h, want := range map[string]string{"Content-Type": "text/event-stream", "X-Accel-Buffering": "no", "Cache-Control": "no-cache", "Content-Encoding": ""} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		tr.SetShardSource("x", "main@sha1:c1", nil)
		tr.SetShardApply("x", "main@sha1:c1", nil)
		tr.SetRelease("shop", &status.Release{Generation: 1, ChartVersion: "0.1.0"})
		tr.KubeEvent("shop", status.KubeEvent{Store: "shop", Reason: "ScalingReplicaSet"})
		tr.SetRelease("shop", &status.Release{Generation: 1, ObservedGeneration: 1, ChartVersion: "0.1.0", Installed: true,
			Ready: &status.Condition{Status: "True", Reason: "InstallSucceeded"}})
	}()
	items, ids := readEvents(t, resp, 0) // the stream ends by itself at ready
	want := "status:committed status:sourceFetched status:applied status:installing event:ScalingReplicaSet status:ready"
	if got := strings.Join(items, " "); got != want {
		t.Fatalf("stream %q, want %q", got, want)
	}

	// Resuming after the first event replays the rest and ends at ready again.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/stores/shop/events", nil)
	req.Header.Set("Last-Event-ID", ids[0])
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	items, _ = readEvents(t, resp2, 0)
	if got := strings.Join(items, " "); got != "status:sourceFetched status:applied status:installing event:ScalingReplicaSet status:ready" {
		t.Fatalf("resumed stream %q", got)
	}

	// Unknown store: 404 problem.
	resp3, err := http.Get(srv.URL + "/api/v1/stores/nope/events")
	if err != nil {
		t.Fatal(err)
	}
	resp3.Body.Close()
	if resp3.StatusCode != http.StatusNotFound || resp3.Header.Get("Content-Type") != ContentProblem {
		t.Fatalf("unknown store: %d %s", resp3.StatusCode, resp3.Header.Get("Content-Type"))
	}
}

func TestEventsWithoutCluster(t *testing.T) {
	srv := httptest.NewServer(Handler(nil, Options{}))
	defer srv.Close()
	for _, p := range []string{"/api/v1/events", "/api/v1/stores/shop/events"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s without a cluster: %d", p, resp.StatusCode)
		}
	}
}
