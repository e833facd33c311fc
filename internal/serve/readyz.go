package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/store"
)

// /readyz?verbose is Kubernetes' form of the readiness probe for an operator: one
// line per check, [+] or [-], then whether the probe passed. Besides the fleet
// repository (the check that decides the status code, as plain /readyz) it has a
// line per served cluster, connected or lost, and whether this replica runs that
// cluster's shard publisher. A lost cluster is [-] and named, but does not fail
// the probe: the API serves on without it (its stores show unknown), and a replica
// taken out of its Service for it would serve nobody. With Accept:
// application/json the same checks come as JSON, like plain /readyz.

// clusterCheck is one served cluster as /readyz?verbose shows it.
type clusterCheck struct {
	Name string
	// Lost is why the watcher does not reach the cluster (nil: connected).
	Lost error
	// Leader: this replica holds the cluster's Lease and runs its shard publisher.
	Leader bool
}

// readyCheck is one line of /readyz?verbose.
type readyCheck struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// State is a cluster's connected or lost; ok or failed for the fleet.
	State string `json:"state"`
	// Message says why a check is not ok.
	Message string `json:"message,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	// Publisher is leader or standby: whether this replica publishes the cluster's
	// shards.
	Publisher string `json:"publisher,omitempty"`
}

type readyReport struct {
	Status string       `json:"status"`
	Checks []readyCheck `json:"checks"`
}

// verboseReadyz answers GET /readyz?verbose and hands every other request to next.
// fleet is the gate's readiness (what plain /readyz asks); clusters is nil without
// a cluster.
func verboseReadyz(next http.Handler, fleet func(context.Context) error, clusters func() []clusterCheck, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !r.URL.Query().Has("verbose") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		rep := readiness(ctx, fleet, clusters, log)
		code := http.StatusOK
		if rep.Status != "ready" {
			code = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", strconv.Itoa(int(api.RetryAfter/time.Second)))
		}
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			api.Write(w, code, rep)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		var b strings.Builder
		for _, c := range rep.Checks {
			mark, line := "+", c.State
			if !c.OK {
				mark = "-"
			}
			if c.Message != "" {
				line += ": " + c.Message
			}
			if c.Publisher != "" {
				line += "; shard publisher: " + c.Publisher
			}
			fmt.Fprintf(&b, "[%s]%s %s\n", mark, c.Name, line)
		}
		if rep.Status == "ready" {
			b.WriteString("readyz check passed\n")
		} else {
			b.WriteString("readyz check failed\n")
		}
		_, _ = w.Write([]byte(b.String()))
	})
}

// readiness runs the checks. The fleet's failure shows as plain /readyz shows it:
// a domain message, never the raw error (it may hold paths and hosts), which is
// logged.
func readiness(ctx context.Context, fleet func(context.Context) error, clusters func() []clusterCheck, log *slog.Logger) readyReport {
	rep := readyReport{Status: "ready"}
	fc := readyCheck{Name: "fleet", OK: true, State: "ok"}
	if err := fleet(ctx); err != nil {
		log.Warn("not ready", "err", err)
		rep.Status = "not ready"
		fc.OK, fc.State, fc.Message = false, "failed", "the fleet repository cannot be written now"
		if store.ErrorCode(err) == store.EUNAVAILABLE {
			fc.Message = store.ErrorMessage(err)
		}
	}
	rep.Checks = append(rep.Checks, fc)
	if clusters == nil {
		return rep
	}
	for _, c := range clusters() {
		rc := readyCheck{Name: "cluster/" + c.Name, Cluster: c.Name, OK: c.Lost == nil, State: "connected", Publisher: "standby"}
		if c.Lost != nil {
			rc.State, rc.Message = "lost", c.Lost.Error()
		}
		if c.Leader {
			rc.Publisher = "leader"
		}
		rep.Checks = append(rep.Checks, rc)
	}
	return rep
}

// clusterChecks reports each served cluster's connection and publisher.
func clusterChecks(cs []*attached) func() []clusterCheck {
	return func() []clusterCheck {
		out := make([]clusterCheck, 0, len(cs))
		for _, c := range cs {
			out = append(out, clusterCheck{Name: c.name, Lost: c.w.Check(), Leader: c.lg.current() != nil})
		}
		return out
	}
}
