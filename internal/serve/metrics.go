package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/storefleet/storefleet/internal/metrics"
)

// defaultInternalListen is where /metrics is served unless --internal-listen says
// otherwise: loopback, a port of its own. Never the API's port (the auth issue):
// the API's port is what an Ingress exposes, and metrics name routes, tenants'
// volumes and failure rates no client should read.
const defaultInternalListen = "127.0.0.1:9090"

// listenInternal opens the internal listener. An address given explicitly that
// cannot be had stops serve, as --listen does. The default one may be taken by
// another gitops-api on the same machine (make dev beside a test run, or several
// test processes): serve then warns and runs without metrics rather than refuse to
// serve the API over an optional port. "none" turns the listener off.
func listenInternal(cfg config, log *slog.Logger) (net.Listener, error) {
	if cfg.internalListen == "none" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.internalListen)
	switch {
	case err == nil:
		return ln, nil
	case cfg.internalListenSet:
		return nil, fmt.Errorf("--internal-listen: %w", err)
	}
	log.Warn("no /metrics: the default internal address is taken; set --internal-listen", "internal_listen", cfg.internalListen, "err", err)
	return nil, nil
}

// serveInternal serves /metrics on ln until the returned stop is called. Nothing
// else is served there.
func serveInternal(ln net.Listener, m *metrics.Metrics, log *slog.Logger) func() {
	if ln == nil {
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	log.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	srv := &http.Server{
		Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("internal listener failed", "err", err)
		}
	}()
	return func() {
		_ = srv.Close()
		<-done
	}
}
