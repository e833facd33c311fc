package api

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// On shutdown an in-flight request finishes and gets its answer; new connections
// are refused.
func TestServeFinishesInFlightRequestsOnShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		Write(w, http.StatusAccepted, map[string]string{"state": "committed"})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- Serve(ctx, ln, h, 10*time.Second, log) }()
	url := "http://" + ln.Addr().String()
	got := make(chan int, 1)
	go func() {
		res, err := http.Get(url)
		if err != nil {
			got <- 0
			return
		}
		res.Body.Close()
		got <- res.StatusCode
	}()
	<-started
	cancel()
	// The listener closes at once; the in-flight request is still running.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepts after shutdown began")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	if s := <-got; s != http.StatusAccepted {
		t.Fatalf("in-flight request got %d during shutdown, want 202", s)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A route's write deadline cuts a response that is too slow, while the server has no
// global WriteTimeout (so routes without a deadline, like event streams, live on).
func TestPerRouteWriteDeadline(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		Write(w, http.StatusOK, map[string]string{"ok": "late"})
	}
	mux := http.NewServeMux()
	// Through the logging wrapper, as in Handler: http.ResponseController must reach
	// the connection through statusWriter.Unwrap.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux.Handle("/bounded", logRequests(log, noObserver{})(writeDeadline(100*time.Millisecond)(http.HandlerFunc(slow))))
	mux.Handle("/stream", http.HandlerFunc(slow))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = Serve(ctx, ln, mux, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	url := "http://" + ln.Addr().String()
	if res, err := http.Get(url + "/bounded"); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK && len(b) > 0 {
			t.Fatalf("a response past its route's write deadline arrived: %s", b)
		}
	}
	res, err := http.Get(url + "/stream")
	if err != nil {
		t.Fatalf("route without a deadline was cut: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
}
