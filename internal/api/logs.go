package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/storefleet/storefleet/internal/store"
)

// Lifetimes of a logs response. A follow ends by itself after LogFollowLifetime
// (by default): a client that wants more reconnects with ?since=, so no stream,
// and nothing it holds on the cluster, outlives a forgotten tab for long.
const (
	LogFollowLifetime = time.Hour
	// logReadLifetime bounds a read without follow: the tail of every container,
	// at most store.MaxTailLines lines each.
	logReadLifetime = 2 * time.Minute
	// logWriteDeadline is how long one write to the client may take: a client
	// that stops reading is let go.
	logWriteDeadline = 30 * time.Second
)

// storeLogs streams a store's Pod logs as text/plain, one line per log line with
// "<pod>/<container> " before it.
func (a *api) storeLogs(w http.ResponseWriter, r *http.Request) {
	if a.logs == nil {
		WriteProblem(w, r, newProblem(http.StatusNotFound, "no-cluster", "No cluster configured",
			"store logs need a cluster: start gitops-api serve with --kubeconfig or in a cluster"))
		return
	}
	o, component, p := logOptions(r)
	if p != nil {
		WriteProblem(w, r, p)
		return
	}
	// Like GET: another tenant's store is not found.
	v, err := a.svc.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if component != nil {
		comps := store.Components[v.Store.Engine]
		if !slices.Contains(comps, *component) {
			WriteProblem(w, r, badQuery("component", "enum", "one of the "+string(v.Store.Engine)+" engine's components: "+strings.Join(comps, ", ")))
			return
		}
		o.Component = *component
	}
	life := logReadLifetime
	if o.Follow {
		life = a.logLifetime
	}
	ctx, cancel := context.WithTimeout(r.Context(), life)
	defer cancel()
	rc, err := a.logs.StoreLogs(ctx, v.Store, o)
	if errors.Is(err, store.ErrNoRunningPods) {
		detail := "the store has no running pods to read logs from"
		if o.Component != "" {
			detail = "the store has no running pods of component " + o.Component
		}
		WriteProblem(w, r, newProblem(http.StatusConflict, "no-running-pods", "No running pods", detail))
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return // the headers only; a follow would otherwise hold the request open for nothing
	}
	ctl := http.NewResponseController(w)
	_ = ctl.Flush() // the client knows the stream is open before the first line
	buf := make([]byte, 32<<10)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			_ = ctl.SetWriteDeadline(time.Now().Add(logWriteDeadline))
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			// Each read is what the containers wrote since the last: send it now
			// (a follow is read as it happens).
			if ctl.Flush() != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				a.log.Debug("logs stream ended", "request_id", RequestIDFrom(r.Context()), "err", err)
			}
			return
		}
	}
}

// logOptions reads the query of a logs request; component is checked against the
// store's engine once the store is known. Every parameter may be given once.
func logOptions(r *http.Request) (store.LogOptions, *string, *Problem) {
	var (
		o         store.LogOptions
		component *string
	)
	for k, vs := range r.URL.Query() {
		if len(vs) != 1 {
			return o, nil, badQuery(k, "single", "give the parameter once")
		}
		v := vs[0]
		switch k {
		case "component":
			component = &v
		case "follow":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, nil, badQuery(k, "boolean", "must be true or false")
			}
			o.Follow = b
		case "tailLines":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || n > store.MaxTailLines {
				return o, nil, badQuery(k, "range", "an integer from 1 to "+strconv.Itoa(store.MaxTailLines))
			}
			o.TailLines = n
		case "since":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return o, nil, badQuery(k, "duration", "a positive duration such as 90s, 15m or 2h")
			}
			o.Since = d
		default:
			return o, nil, badQuery(k, "unknown", "unknown query parameter")
		}
	}
	if o.TailLines == 0 && o.Since == 0 {
		o.TailLines = store.DefaultTailLines
	}
	return o, component, nil
}
