package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// StatusSource is the live status of stores (internal/status.Tracker). Nil in
// Options means no cluster is configured: stores show the fleet's own phase
// (committed) and the cluster as not connected.
type StatusSource interface {
	Get(name string) (status.Status, bool)
	Phase(name string) store.Phase
	Subscribe(store, lastID string, buffer int) (*status.Subscription, []status.Event, error)
	Unsubscribe(s *status.Subscription)
}

// Event stream timing.
const (
	// HeartbeatInterval is how often an idle event stream sends a comment, so
	// proxies and clients can tell a quiet stream from a dead one.
	HeartbeatInterval = 15 * time.Second
	// EventWriteDeadline bounds the write of one event: a client that stops reading
	// is dropped instead of holding a goroutine for ever.
	EventWriteDeadline = 10 * time.Second
)

// withStatus puts the live status, when there is one, over the fleet's.
func (a *api) withStatus(out StoreJSON) StoreJSON {
	if a.status == nil {
		return out
	}
	st, ok := a.status.Get(out.Name)
	if !ok {
		return out
	}
	if rv := out.Status.Review; rv != nil {
		// The cluster still runs the spec on the fleet's branch; the change under
		// review is what the store waits on.
		st.AwaitReview(*rv)
	}
	out.Status = st
	return out
}

// listByPhase filters by the live phase: the fleet knows only its own phases, so
// pages of the fleet's list are filtered here until one page is full.
func (a *api) listByPhase(w http.ResponseWriter, r *http.Request, f store.Filter, limit int, cont string) {
	phase := f.Phase
	f.Phase = ""
	out := ListJSON{Items: []StoreJSON{}}
	for {
		views, next, ok := a.listPage(w, r, f, maxLimit, cont)
		if !ok {
			return
		}
		for _, v := range views {
			sj := a.withStatus(storeJSON(v))
			if string(sj.Status.Phase) != phase {
				continue
			}
			if len(out.Items) == limit {
				// The fleet's continue token is the last name returned (see store.Service.List).
				out.Continue = base64.RawURLEncoding.EncodeToString([]byte("n:" + out.Items[limit-1].Name))
				Write(w, http.StatusOK, out)
				return
			}
			out.Items = append(out.Items, sj)
		}
		if next == "" {
			Write(w, http.StatusOK, out)
			return
		}
		cont = next
	}
}

// storeEvents streams one store's progress.
func (a *api) storeEvents(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if a.status == nil {
		WriteProblem(w, r, newProblem(http.StatusNotFound, "no-cluster", "No cluster configured",
			"event streams need a cluster: start gitops-api serve with --kubeconfig or in a cluster"))
		return
	}
	if PrincipalFrom(r.Context()) != nil {
		// Like GET: another tenant's store is not found, so a stream cannot tell
		// that it exists either.
		if _, err := a.svc.Get(r.Context(), name); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	a.stream(w, r, name)
}

// allEvents streams every store's changes (dashboards: one connection for all).
func (a *api) allEvents(w http.ResponseWriter, r *http.Request) {
	if a.status == nil {
		WriteProblem(w, r, newProblem(http.StatusNotFound, "no-cluster", "No cluster configured",
			"event streams need a cluster: start gitops-api serve with --kubeconfig or in a cluster"))
		return
	}
	a.stream(w, r, "")
}

// stream writes Server-Sent Events: first the current state (or, with a
// Last-Event-ID this process still buffers, what happened since), then every change.
// A single store's stream ends once the store reaches a terminal phase.
func (a *api) stream(w http.ResponseWriter, r *http.Request, name string) {
	lastID := r.Header.Get("Last-Event-ID")
	sub, first, err := a.status.Subscribe(name, lastID, 1024)
	if err != nil {
		WriteProblem(w, r, newProblem(http.StatusNotFound, "not-found", "Not found", err.Error()))
		return
	}
	defer a.status.Unsubscribe(sub)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		// The headers are the whole answer; a stream would only be thrown away.
		return
	}
	visible := a.visibility(r)
	send := func(ev status.Event) (terminal bool, ok bool) {
		if !visible(ev) {
			return false, true
		}
		var data any = ev.Status
		typ := "status"
		if ev.Kind == status.KindEvent {
			data, typ = ev.Kube, "event"
		}
		b, err := json.Marshal(data)
		if err != nil {
			return false, false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(EventWriteDeadline))
		if _, err := fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, typ, b); err != nil {
			return false, false
		}
		if err := rc.Flush(); err != nil {
			return false, false
		}
		return name != "" && ev.Kind == status.KindStatus && ev.Status.Phase.Terminal(), true
	}
	_ = rc.SetWriteDeadline(time.Now().Add(EventWriteDeadline))
	if _, err := fmt.Fprintf(w, "retry: 2000\n\n"); err != nil {
		return
	}
	done := false
	for _, ev := range first {
		t, ok := send(ev)
		if !ok {
			return
		}
		done = done || t
	}
	// A replay may end in a terminal phase that a later status already left; only
	// the newest status counts.
	if name != "" && len(first) > 0 {
		done = lastStatusTerminal(first)
	}
	if done {
		return
	}
	beat := time.NewTicker(HeartbeatInterval)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-beat.C:
			_ = rc.SetWriteDeadline(time.Now().Add(EventWriteDeadline))
			if _, err := fmt.Fprintf(w, ": heartbeat %s\n\n", time.Now().UTC().Format(time.RFC3339)); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case ev, open := <-sub.C:
			if !open {
				// Too slow to keep up, or the server is shutting down: the client
				// reconnects with Last-Event-ID.
				return
			}
			t, ok := send(ev)
			if !ok || t {
				return
			}
		}
	}
}

func lastStatusTerminal(evs []status.Event) bool {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == status.KindStatus {
			return evs[i].Status.Phase.Terminal()
		}
	}
	return false
}

// visibility returns whether an event of r's stream may be sent to its principal:
// only events of stores of its tenants. Whether a store is visible is asked once
// per store and stream of the (access-checked) service, not of Git per event; it is
// asked again after the store's terminal phase, as its name may then be taken by a
// store of another tenant.
func (a *api) visibility(r *http.Request) func(status.Event) bool {
	p := PrincipalFrom(r.Context())
	if p == nil {
		return func(status.Event) bool { return true }
	}
	seen := map[string]bool{}
	return func(ev status.Event) bool {
		ok, known := seen[ev.Store]
		if !known {
			v, err := a.svc.Get(r.Context(), ev.Store)
			ok = err == nil && p.Sees(tenantOf(v.Store))
			if store.ErrorCode(err) == store.ENOTFOUND {
				// Purged: its history still names its tenant, so the tenant sees
				// the last events of its own store.
				var h []store.Entry
				if h, err = a.svc.History(r.Context(), ev.Store); err == nil {
					ok = p.Sees(entriesTenant(h))
				}
			}
			if err == nil || store.ErrorCode(err) == store.ENOTFOUND {
				// Any other error (the fleet unavailable) is asked again next time;
				// until then the event is not sent.
				seen[ev.Store] = ok
			}
		}
		if ev.Kind == status.KindStatus && ev.Status != nil && ev.Status.Phase.Terminal() {
			delete(seen, ev.Store)
		}
		return ok
	}
}

// tenantOf is the store's tenant, the default one for a store that names none (the
// fleet fills in the configured default; this is the last resort).
func tenantOf(s store.Store) string {
	if s.Tenant == "" {
		return store.DefaultTenant
	}
	return s.Tenant
}

// entriesTenant is the tenant the newest entry naming one gives.
func entriesTenant(h []store.Entry) string {
	for _, e := range h {
		if e.Tenant != "" {
			return e.Tenant
		}
	}
	return store.DefaultTenant
}
