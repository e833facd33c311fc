package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/storefleet/storefleet/internal/store"
)

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document of every route.
func OpenAPI() []byte { return openAPIDoc }

// Service is what the handlers need from the store lifecycle (internal/fleet).
type Service = store.Service

// Options tune the handler; zero values are the defaults.
type Options struct {
	Log *slog.Logger
	// Diffs gives a history entry's diff (GET /stores/{name}/history/{sha}); nil
	// answers that route with 404.
	Diffs Differ
	// WriteDeadline bounds ordinary routes (RouteWriteDeadline by default).
	WriteDeadline time.Duration
	// Status is the live status from the cluster; nil when none is configured.
	Status StatusSource
	// Cluster reports the cluster connection for /readyz; nil when none is configured.
	Cluster func() error
	// Authenticate checks the bearer token of every /api/v1 request; nil turns
	// authentication off (make run on loopback): then X-Actor is the actor, as
	// the client claims it.
	Authenticate Authenticator
	// Limits are each caller's request budgets on /api/v1; zero = no limit.
	Limits Limits
	// Observer is told of every request, authentication and refusal by a budget
	// (internal/metrics); nil counts nothing.
	Observer Observer
	// GitHub receives the webhook deliveries of pull-request review at WebhookPath;
	// nil: no such route.
	GitHub store.DeliveryReceiver
	// Logs reads stores' Pod logs (GET /stores/{name}/logs); nil when no cluster
	// is configured (the route answers 404 no-cluster).
	Logs store.Logs
	// LogFollowLifetime bounds a followed logs stream (LogFollowLifetime by default).
	LogFollowLifetime time.Duration
}

// Observer takes what the API counts. Its arguments are plain values so that the
// metrics package implements it without the API depending on Prometheus. route is
// the router's pattern (/api/v1/stores/{name}), never the path: a path carries a
// store's name, and one series per store is what metrics must not have.
type Observer interface {
	HTTPRequest(method, route string, code int, d time.Duration)
	// Authentication: method is the principal's (empty when no token was
	// accepted); result is ok, missing, malformed, invalid or unavailable.
	Authentication(method, result string)
	// RateLimited: budget is reads or writes.
	RateLimited(budget string)
}

type noObserver struct{}

func (noObserver) HTTPRequest(string, string, int, time.Duration) {}
func (noObserver) Authentication(string, string)                  {}
func (noObserver) RateLimited(string)                             {}

// api holds the handlers' dependencies.
type api struct {
	svc     Service
	log     *slog.Logger
	status  StatusSource
	cluster func() error
	diffs   Differ
	logs    store.Logs
	// logLifetime bounds a followed logs stream.
	logLifetime time.Duration
}

// Differ gives the file diff of one change of a store's history
// (fleet.Service.ChangeDiff).
type Differ interface {
	ChangeDiff(ctx context.Context, e store.Entry) ([]store.Diff, error)
}

// Handler returns the HTTP handler for svc.
func Handler(svc Service, o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.WriteDeadline == 0 {
		o.WriteDeadline = RouteWriteDeadline
	}
	if o.LogFollowLifetime <= 0 {
		o.LogFollowLifetime = LogFollowLifetime
	}
	a := &api{svc: svc, log: o.Log, status: o.Status, cluster: o.Cluster, diffs: o.Diffs, logs: o.Logs, logLifetime: o.LogFollowLifetime}
	r := chi.NewRouter()
	if o.Observer == nil {
		o.Observer = noObserver{}
	}
	r.Use(requestID(o.Authenticate != nil), logRequests(o.Log, o.Observer), routeMethods(r))
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed(r))
	r.Group(func(r chi.Router) {
		r.Use(writeDeadline(5 * time.Second))
		r.Get("/healthz", a.healthz)
		r.Get("/readyz", a.readyz)
		r.Get("/openapi.json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ContentJSON)
			w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
			_, _ = w.Write(openAPIDoc)
		})
	})
	// Public: the probes and the API's description. Everything under /api/v1 needs a
	// principal when authentication is on.
	lim := newLimiter(o.Limits)
	if o.GitHub != nil {
		r.With(writeDeadline(webhookDeadline)).Post(WebhookPath, githubWebhook(o.GitHub, a))
	}
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(guard(o.Authenticate, lim, o.Observer), checkRequestHeaders)
		r.Group(func(r chi.Router) {
			// Every route here answers within the deadline; the event streams below
			// set a deadline per event instead.
			r.Use(writeDeadline(o.WriteDeadline))
			r.Post("/stores", a.createStore)
			r.Get("/stores", a.listStores)
			r.Get("/stores/{name}", a.getStore)
			r.Patch("/stores/{name}", a.patchStore)
			r.Delete("/stores/{name}", a.deleteStore)
			r.Get("/stores/{name}/history", a.storeHistory)
			r.Get("/stores/{name}/history/{sha}", a.storeChange)
			r.Get("/requests/{id}", a.getRequest)
		})
		r.Get("/stores/{name}/events", a.storeEvents)
		// A stream: bounded by its own lifetime and a deadline per write.
		r.Get("/stores/{name}/logs", a.storeLogs)
		r.Get("/events", a.allEvents)
	})
	return r
}

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := a.svc.Ready(ctx); err != nil {
		// The probe answers anyone who reaches the port: its body names the cause
		// (a domain message, written to be shown), never the raw error, which may
		// hold paths and hosts; the whole error goes to the log.
		a.log.Warn("not ready", "err", err)
		detail := "the fleet repository cannot be written now"
		if store.ErrorCode(err) == store.EUNAVAILABLE {
			detail = store.ErrorMessage(err)
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
		WriteProblem(w, r, newProblem(http.StatusServiceUnavailable, "not-ready", "Not ready", detail))
		return
	}
	out := map[string]string{"status": "ready"}
	if a.cluster != nil {
		// The API keeps serving without the cluster (stores show unknown), so a lost
		// cluster is reported here, not turned into a 503.
		out["cluster"] = "connected"
		if err := a.cluster(); err != nil {
			out["cluster"] = "not connected: " + err.Error()
		}
	}
	Write(w, http.StatusOK, out)
}

// StoreJSON is a store as the API shows it: the spec, the commit that last changed
// it and its status, in the domain's one status shape (the event streams send the
// same). Status is an object so that it can grow without breaking clients.
type StoreJSON struct {
	store.Store
	Commit *store.Commit `json:"commit,omitempty"`
	Status store.Status  `json:"status"`
}

// storeJSON is a store as the fleet repository alone tells it: the phase its state
// implies and the commit step. withStatus puts the live status over it.
func storeJSON(v store.View) StoreJSON {
	out := StoreJSON{Store: v.Store, Commit: v.Commit,
		Status: store.Status{Store: v.Store.Name, Phase: v.State.Phase(), Steps: []store.Step{}}}
	if v.Commit != nil {
		t := v.Commit.Time
		out.Status.Commit = v.Commit.SHA
		out.Status.Steps = append(out.Status.Steps, store.Step{Name: "committed", State: "done", Time: &t, Commit: v.Commit.SHA})
	}
	if v.Review != nil {
		out.Status.AwaitReview(*v.Review)
		return out
	}
	switch v.State {
	case store.StateRetained:
		out.Status.Message = "release removed, namespace and data retained; DELETE with ?purge=true to remove the data"
	case store.StatePurging:
		// Only the fleet's view: with a cluster the live status replaces it and
		// gitops-api sends the second step itself.
		out.Status.Message = "namespace made prunable; with no cluster connected, once Flux has applied it, DELETE with ?purge=true again removes the namespace and the data"
	}
	return out
}

// AcceptedJSON answers a change: the request id, the outcome and links.
type AcceptedJSON struct {
	store.Outcome
	// Changes shadows the Outcome's so that a dry run always lists them, [] when
	// nothing would change: the client asked what would change, and "nothing" is an
	// answer, not a field to leave out. Nil (omitted) for a change that was made.
	Changes *[]store.Diff     `json:"changes,omitempty"`
	Links   map[string]string `json:"links,omitempty"`
}

// meta builds the request's identity: an Idempotency-Key becomes the change's
// Request-Id, so a retry with the same key is recognised, also after a restart.
//
// The actor is the authenticated subject; an X-Actor from an authenticated
// principal is whom it acts for, and only a principal allowed to act for others may
// name one.
func (a *api) meta(w http.ResponseWriter, r *http.Request, body []byte, flags ...string) (store.Meta, bool) {
	m := store.Meta{Actor: ActorFrom(r.Context()), OnBehalfOf: OnBehalfOfFrom(r.Context()), RequestID: RequestIDFrom(r.Context())}
	if p := PrincipalFrom(r.Context()); p != nil && m.OnBehalfOf != "" && !p.ActAs {
		WriteProblem(w, r, actAsProblem())
		return m, false
	}
	q, ok := queryFlags(w, r, append([]string{"dryRun", "purge"}, flags...)...)
	if !ok {
		return m, false
	}
	m.DryRun, m.Force = q["dryRun"], q["force"]
	// force overrides a guard; it does not make another request of the same one, so
	// a retry that adds or drops it is still recognised by its key.
	delete(q, "force")
	if key, present := r.Header["Idempotency-Key"]; present {
		if len(key) != 1 || !ValidID(key[0]) {
			WriteProblem(w, r, newProblem(http.StatusBadRequest, "invalid-header", "Invalid header",
				"Idempotency-Key must be 1 to 64 characters of A-Z a-z 0-9 - _ . :",
				FieldError{Field: "Idempotency-Key", Rule: "format", Detail: "1 to 64 characters of A-Z a-z 0-9 - _ . :"}))
			return m, false
		}
		m.RequestID, m.ClientKey = key[0], true
	}
	// Over the canonical request, so that a retry that re-serialises the same JSON is
	// recognised as the same request.
	// And over who asks: keys are the clients' choice, so another principal reusing a
	// key is another request, never answered with the first one's outcome.
	var who []byte
	if p := store.PrincipalFrom(r.Context()); p != nil {
		who = []byte(p.Subject)
	}
	m.Fingerprint = fingerprint([]byte(r.Method), []byte(r.URL.Path), canonicalFlags(q), canonicalJSON(body), who)
	return m, true
}

// queryFlags parses the boolean query parameters a mutating route accepts and
// refuses any other parameter.
func queryFlags(w http.ResponseWriter, r *http.Request, allowed ...string) (map[string]bool, bool) {
	out := map[string]bool{}
	q := r.URL.Query()
	for k, vs := range q {
		if !contains(allowed, k) {
			WriteProblem(w, r, badQuery(k, "unknown", "unknown query parameter"))
			return nil, false
		}
		b, err := strconv.ParseBool(vs[len(vs)-1])
		if err != nil || len(vs) != 1 {
			WriteProblem(w, r, badQuery(k, "boolean", "must be true or false, given once"))
			return nil, false
		}
		out[k] = b
	}
	return out, true
}

func badQuery(field, rule, detail string) *Problem {
	return newProblem(http.StatusBadRequest, "invalid-query", "Invalid query parameter", field+": "+detail,
		FieldError{Field: field, Rule: rule, Detail: detail})
}

func (a *api) createStore(w http.ResponseWriter, r *http.Request) {
	body, p := readRaw(w, r)
	if p != nil {
		WriteProblem(w, r, p)
		return
	}
	var in store.Store
	if fe := Decode(body, &in); fe != nil {
		WriteProblem(w, r, badBody(*fe))
		return
	}
	m, ok := a.meta(w, r, body)
	if !ok {
		return
	}
	if _, purge := r.URL.Query()["purge"]; purge {
		WriteProblem(w, r, badQuery("purge", "unknown", "purge applies to DELETE only"))
		return
	}
	out, err := a.svc.Create(r.Context(), in, m)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.accepted(w, out, true)
}

func (a *api) accepted(w http.ResponseWriter, out store.Outcome, location bool) {
	if out.DryRun {
		changes := out.Changes
		if changes == nil {
			changes = []store.Diff{}
		}
		Write(w, http.StatusOK, AcceptedJSON{Outcome: out, Changes: &changes})
		return
	}
	storeURL := "/api/v1/stores/" + url.PathEscape(out.Store)
	requestURL := "/api/v1/requests/" + url.PathEscape(out.RequestID)
	links := map[string]string{"request": requestURL}
	if out.State == store.RequestPending {
		// Accepted, outcome not known yet (RFC 9110 202: it might or might not be
		// acted upon): the request is where the client learns it.
		links["store"] = storeURL
		w.Header().Set("Location", requestURL)
		Write(w, http.StatusAccepted, AcceptedJSON{Outcome: out, Links: links})
		return
	}
	// A purge's last step leaves no store to link to, and no version to tag.
	if out.Phase != store.PhaseDeleted {
		links["store"] = storeURL
		if location {
			w.Header().Set("Location", storeURL)
		}
		if out.Commit != nil {
			// The store's new version: a client can send it in If-Match next time
			// without reading the store again.
			w.Header().Set("ETag", etag(out.Commit.SHA))
		}
	}
	Write(w, http.StatusAccepted, AcceptedJSON{Outcome: out, Links: links})
}

func (a *api) getStore(w http.ResponseWriter, r *http.Request) {
	a.writeStore(w, r, chi.URLParam(r, "name"))
}

// writeStore answers with the store as it is now and its ETag: GET, and a PATCH that
// changed nothing.
func (a *api) writeStore(w http.ResponseWriter, r *http.Request, name string) {
	v, err := a.svc.Get(r.Context(), name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if v.Commit != nil {
		w.Header().Set("ETag", etag(v.Commit.SHA))
	}
	Write(w, http.StatusOK, a.withStatus(storeJSON(v)))
}

// ListJSON is one page of stores.
type ListJSON struct {
	Items    []StoreJSON `json:"items"`
	Continue string      `json:"continue,omitempty"`
}

const (
	defaultLimit = 100
	maxLimit     = 1000
	// maxQueryText bounds ?q=: longer than any name, domain or title it could match.
	maxQueryText = 256
)

// queryValues gives each query parameter's value, or writes the problem for one given
// more than once: no list parameter takes several.
func queryValues(w http.ResponseWriter, r *http.Request) (map[string]string, bool) {
	out := map[string]string{}
	for k, vs := range r.URL.Query() {
		if len(vs) != 1 {
			WriteProblem(w, r, badQuery(k, "single", "give the parameter once"))
			return nil, false
		}
		out[k] = vs[0]
	}
	return out, true
}

// limitParam reads ?limit=, an integer from 1 to most, or writes the problem.
func limitParam(w http.ResponseWriter, r *http.Request, v string, most int) (int, bool) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		WriteProblem(w, r, badQuery("limit", "range", "an integer from 1 to "+strconv.Itoa(most)))
		return 0, false
	}
	return n, true
}

func (a *api) listStores(w http.ResponseWriter, r *http.Request) {
	q, ok := queryValues(w, r)
	if !ok {
		return
	}
	var f store.Filter
	limit, cont := defaultLimit, ""
	for k, v := range q {
		switch k {
		case "limit":
			if limit, ok = limitParam(w, r, v, maxLimit); !ok {
				return
			}
		case "continue":
			cont = v
		case "engine":
			if !validEngine(v) {
				WriteProblem(w, r, badQuery(k, "enum", "one of woocommerce, medusa"))
				return
			}
			f.Engine = v
		case "plan":
			if _, ok := store.Plans[store.PlanName(v)]; !ok {
				WriteProblem(w, r, badQuery(k, "enum", "one of basic, standard, premium"))
				return
			}
			f.Plan = v
		case "cluster":
			f.Cluster = v
		case "phase":
			if !validPhase(v) {
				WriteProblem(w, r, badQuery(k, "enum", "one of "+phaseList()))
				return
			}
			f.Phase = v
		case "tenant":
			if rule, msg := store.ValidateTenant(v); rule != "" {
				WriteProblem(w, r, badQuery(k, rule, msg))
				return
			}
			f.Tenant = v
		case "q":
			if len(v) > maxQueryText {
				WriteProblem(w, r, badQuery(k, "maxLength", "at most "+strconv.Itoa(maxQueryText)+" bytes"))
				return
			}
			f.Text = v
		default:
			WriteProblem(w, r, badQuery(k, "unknown", "unknown query parameter"))
			return
		}
	}
	if a.status != nil && f.Phase != "" {
		a.listByPhase(w, r, f, limit, cont)
		return
	}
	views, next, ok := a.listPage(w, r, f, limit, cont)
	if !ok {
		return
	}
	out := ListJSON{Items: make([]StoreJSON, 0, len(views)), Continue: next}
	for _, v := range views {
		out.Items = append(out.Items, a.withStatus(storeJSON(v)))
	}
	Write(w, http.StatusOK, out)
}

func validEngine(v string) bool {
	for _, e := range store.Engines {
		if string(e) == v {
			return true
		}
	}
	return false
}

func (a *api) patchStore(w http.ResponseWriter, r *http.Request) {
	body, p := readRaw(w, r, ContentMergePatch, ContentJSON)
	if p != nil {
		WriteProblem(w, r, p)
		return
	}
	patch, fe := decodePatch(body)
	if fe != nil {
		WriteProblem(w, r, badBody(*fe))
		return
	}
	m, ok := a.meta(w, r, body)
	if !ok {
		return
	}
	if _, purge := r.URL.Query()["purge"]; purge {
		WriteProblem(w, r, badQuery("purge", "unknown", "purge applies to DELETE only"))
		return
	}
	if m.IfMatch, p = ifMatch(r); p != nil {
		WriteProblem(w, r, p)
		return
	}
	name := chi.URLParam(r, "name")
	out, err := a.svc.Update(r.Context(), name, func(cur store.Store) (store.Store, error) {
		return applyPatch(cur, patch)
	}, m)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if out.State == store.RequestUnchanged {
		// Nothing to commit, so nothing was accepted for later: the answer is the
		// store as it is, as GET gives it.
		a.writeStore(w, r, name)
		return
	}
	a.accepted(w, out, false)
}

// applyPatch merges patch into cur's JSON form and decodes the result strictly, so
// an unknown or mistyped field in the patch is refused like in a create.
func applyPatch(cur store.Store, patch map[string]any) (store.Store, error) {
	raw, err := json.Marshal(cur)
	if err != nil {
		return store.Store{}, err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return store.Store{}, err
	}
	merged, err := json.Marshal(MergePatch(doc, patch))
	if err != nil {
		return store.Store{}, err
	}
	var next store.Store
	if fe := Decode(merged, &next); fe != nil {
		return store.Store{}, badBody(*fe)
	}
	return next, nil
}

func (a *api) deleteStore(w http.ResponseWriter, r *http.Request) {
	q, ok := queryFlags(w, r, "dryRun", "purge", "force")
	if !ok {
		return
	}
	m, ok := a.meta(w, r, nil, "force")
	if !ok {
		return
	}
	var p *Problem
	if m.IfMatch, p = ifMatch(r); p != nil {
		WriteProblem(w, r, p)
		return
	}
	out, err := a.svc.Delete(r.Context(), chi.URLParam(r, "name"), q["purge"], m)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.accepted(w, out, false)
}

// HistoryJSON is one page of a store's audit log, newest first. Next is the cursor of
// the following page (the before to ask it with); absent on the last page.
type HistoryJSON struct {
	Store string        `json:"store"`
	Items []store.Entry `json:"items"`
	Next  string        `json:"next,omitempty"`
}

const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 500
)

// storeHistory answers one page of the store's history: ?limit= commits (1 to 500, 50
// by default) starting after ?before=, the next of the page before. The next page is
// also linked (RFC 8288, rel="next") with the same limit.
//
// A before that is well formed but not one of this store's commits is a 400 naming
// it, as an unknown continue token of the store list is: the history itself exists,
// the cursor is the caller's mistake. (storeChange answers 404 for such a commit: there
// the commit names the resource asked for.) A store the caller may not see answers 404
// whatever the cursor, as before paging: the tenant rules run before it is looked at.
func (a *api) storeHistory(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	q, ok := queryValues(w, r)
	if !ok {
		return
	}
	page := store.HistoryPage{Limit: defaultHistoryLimit}
	for k, v := range q {
		switch k {
		case "limit":
			if page.Limit, ok = limitParam(w, r, v, maxHistoryLimit); !ok {
				return
			}
		case "before":
			if !validSHA(v) {
				WriteProblem(w, r, badQuery(k, "pattern", "a full commit id, 40 lower-case hexadecimal digits"))
				return
			}
			page.Before = v
		default:
			WriteProblem(w, r, badQuery(k, "unknown", "unknown query parameter"))
			return
		}
	}
	h, err := a.svc.HistoryPage(r.Context(), name, page)
	if fe := store.FieldErrors(err); len(fe) == 1 && fe[0].Field == "before" {
		WriteProblem(w, r, badQuery("before", fe[0].Rule, fe[0].Message))
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if h.Entries == nil {
		h.Entries = []store.Entry{}
	}
	if h.Next != "" {
		next := url.Values{"limit": {strconv.Itoa(page.Limit)}, "before": {h.Next}}
		w.Header().Set("Link", "<"+r.URL.EscapedPath()+"?"+next.Encode()+`>; rel="next"`)
	}
	Write(w, http.StatusOK, HistoryJSON{Store: name, Items: h.Entries, Next: h.Next})
}

// ChangeJSON is one change of a store's history with its file diff.
type ChangeJSON struct {
	store.Entry
	Changes []store.Diff `json:"changes"`
}

// storeChange shows one history entry with its diff. The entry is looked up in the
// store's history as GET .../history gives it (the page that starts at the commit,
// however old), so the same tenant rules hold and a commit that is not one of this
// store's changes is not found, whatever it holds.
func (a *api) storeChange(w http.ResponseWriter, r *http.Request) {
	name, sha := chi.URLParam(r, "name"), chi.URLParam(r, "sha")
	if !validSHA(sha) {
		WriteProblem(w, r, newProblem(http.StatusBadRequest, "invalid-path", "Invalid path parameter",
			"sha: a full commit id, 40 lower-case hexadecimal digits", FieldError{Field: "sha", Rule: "pattern", Detail: "40 lower-case hexadecimal digits"}))
		return
	}
	res, err := a.svc.HistoryPage(r.Context(), name, store.HistoryPage{At: sha, Limit: 1})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	h := res.Entries
	i := slices.IndexFunc(h, func(e store.Entry) bool { return e.Commit.SHA == sha })
	if i < 0 || a.diffs == nil {
		a.writeError(w, r, store.Errorf(store.ENOTFOUND, "store %q has no change in commit %s", name, sha))
		return
	}
	d, err := a.diffs.ChangeDiff(r.Context(), h[i])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if d == nil {
		d = []store.Diff{}
	}
	Write(w, http.StatusOK, ChangeJSON{Entry: h[i], Changes: d})
}

func validSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (a *api) getRequest(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !ValidID(id) {
		WriteProblem(w, r, newProblem(http.StatusNotFound, "not-found", "Not found", "no such request",
			FieldError{Field: "id", Rule: "format", Detail: "1 to 64 characters of A-Z a-z 0-9 - _ . :"}))
		return
	}
	out, err := a.svc.Request(r.Context(), id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	Write(w, http.StatusOK, out)
}

// RetryAfter is what a 503 for an unavailable dependency asks the client to wait.
const RetryAfter = 5 * time.Second

// writeError turns a domain error into its HTTP status. This is the only place that
// knows both.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var p *Problem
	if errors.As(err, &p) {
		WriteProblem(w, r, p)
		return
	}
	fields := store.FieldErrors(err)
	fe := make([]FieldError, 0, len(fields))
	for _, f := range fields {
		fe = append(fe, FieldError{Field: f.Field, Rule: f.Rule, Detail: f.Message})
	}
	msg := store.ErrorMessage(err)
	switch store.ErrorCode(err) {
	case store.EINVALID:
		WriteProblem(w, r, newProblem(http.StatusUnprocessableEntity, "invalid", "Invalid store", msg, fe...))
	case store.ECONFLICT:
		if len(fe) > 0 {
			// A change refused because of particular fields (a plan that would shrink
			// storage, an immutable field): the request is understood but cannot be
			// done, whatever the current state.
			WriteProblem(w, r, newProblem(http.StatusUnprocessableEntity, "invalid-change", "Change not allowed", msg, fe...))
			return
		}
		WriteProblem(w, r, newProblem(http.StatusConflict, "conflict", "Conflict", msg))
	case store.ENOTFOUND:
		WriteProblem(w, r, newProblem(http.StatusNotFound, "not-found", "Not found", msg))
	case store.EPRECONDITION:
		// The store's current ETag saves the client a GET before it decides anew.
		if name := chi.URLParam(r, "name"); name != "" {
			if v, err := a.svc.Get(r.Context(), name); err == nil && v.Commit != nil {
				w.Header().Set("ETag", etag(v.Commit.SHA))
			}
		}
		WriteProblem(w, r, newProblem(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed", msg,
			FieldError{Field: "If-Match", Rule: "match", Detail: "names a version of the store that is no longer its current one"}))
	case store.EUNAUTHORIZED:
		WriteProblem(w, r, unauthorized("invalid_token", msg))
	case store.EFORBIDDEN:
		WriteProblem(w, r, newProblem(http.StatusForbidden, "forbidden", "Forbidden", msg))
	case store.EUNAVAILABLE:
		// Nothing was changed and nothing will be: the client may simply retry,
		// after a pause. The type tells an operator where to look.
		a.log.Warn("change unavailable", "request_id", RequestIDFrom(r.Context()), "err", err)
		// A dependency that said how long to wait (GitHub's rate limits) is believed
		// when it asks for longer than the default.
		wait := max(RetryAfter, store.ErrorRetryAfter(err).Round(time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
		WriteProblem(w, r, unavailableProblem(store.ErrorCause(err), msg))
	default:
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			a.log.Warn("request not finished", "request_id", RequestIDFrom(r.Context()), "err", err)
			WriteProblem(w, r, newProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable",
				"the change was not confirmed in time; GET the request to learn its outcome before retrying without an Idempotency-Key"))
			return
		}
		a.log.Error("internal error", "request_id", RequestIDFrom(r.Context()), "err", err)
		WriteProblem(w, r, newProblem(http.StatusInternalServerError, "internal", "Internal error", "the outcome is unknown: GET /api/v1/requests/{id} with this requestId before retrying"))
	}
}

// unavailableProblem is a 503 whose type names its cause.
func unavailableProblem(c store.Cause, msg string) *Problem {
	const st = http.StatusServiceUnavailable
	switch c {
	case store.CauseRemoteUnreachable:
		return newProblem(st, "remote-unreachable", "Fleet remote unreachable", msg)
	case store.CauseRemoteRefused:
		return newProblem(st, "remote-refused", "Fleet remote refused the change", msg)
	case store.CauseStorageFull:
		return newProblem(st, "storage-full", "Storage full", msg)
	case store.CauseStoragePermission:
		return newProblem(st, "storage-permission", "Storage not writable", msg)
	case store.CauseDeadline:
		return newProblem(st, "write-deadline", "Not written before the deadline", msg)
	}
	return newProblem(st, "unavailable", "Service unavailable", msg)
}

// listPage reads one page of the fleet's list. A bad continue token is the caller's
// query parameter, so it is a 400 naming it; any other error goes through writeError.
// It reports false once it has written the error response.
func (a *api) listPage(w http.ResponseWriter, r *http.Request, f store.Filter, limit int, cont string) ([]store.View, string, bool) {
	views, next, err := a.svc.List(r.Context(), f, limit, cont)
	if fe := store.FieldErrors(err); len(fe) == 1 && fe[0].Field == "continue" {
		WriteProblem(w, r, badQuery("continue", fe[0].Rule, fe[0].Message))
		return nil, "", false
	}
	if err != nil {
		a.writeError(w, r, err)
		return nil, "", false
	}
	return views, next, true
}
