package gitrepo

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/store"
)

// OpenBackground returns a Repo while the remote is down, says why it is not
// writable in words that hold no URL, and fetches by itself once the remote is back.
func TestOpenBackground(t *testing.T) {
	ctx := context.Background()
	srv, url := serveFleet(t, "", "")
	addr := strings.TrimPrefix(srv.URL(), "http://")
	srv.Close()

	dir := filepath.Join(t.TempDir(), "clone.git")
	if _, err := Open(ctx, Options{URL: url, Dir: dir}); err == nil {
		t.Fatal("Open succeeded with the remote down")
	}
	var logs lockedBuf
	r, err := OpenBackground(ctx, Options{URL: url, Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("OpenBackground with the remote down: %v", err)
	}
	defer r.Close()
	if r.HasTip() {
		t.Fatal("a clone that never fetched has a tip")
	}
	select {
	case <-r.Synced():
		t.Fatal("Synced with the remote down")
	default:
	}
	err = r.Writable(ctx)
	var nw *NotWritableError
	if !errors.As(err, &nw) || nw.Cause != CauseRemoteUnreachable {
		t.Fatalf("Writable with the remote down: %v, want cause %q", err, CauseRemoteUnreachable)
	}
	if store.ErrorCode(err) != store.EUNAVAILABLE || strings.Contains(store.ErrorMessage(err), addr) {
		t.Errorf("shown as %s %q: want unavailable, without the address", store.ErrorCode(err), store.ErrorMessage(err))
	}

	back, err := githttp.New(srv.Root)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.StartAt(addr); err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	select {
	case <-r.Synced():
	case <-time.After(time.Minute): // a bound against hanging, not a measurement
		t.Fatalf("not synced a minute after the remote came back:\n%s", logs.String())
	}
	if !r.HasTip() {
		t.Error("synced without a tip")
	}
	if err := r.Writable(ctx); err != nil {
		t.Errorf("Writable once synced: %v", err)
	}
	mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-bg")))
}

// Closing a Repo whose background fetch is still retrying stops it.
func TestOpenBackgroundClose(t *testing.T) {
	srv, url := serveFleet(t, "", "")
	srv.Close()
	r, err := OpenBackground(context.Background(), Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := r.Writable(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Writable after Close: %v", err)
	}
}
