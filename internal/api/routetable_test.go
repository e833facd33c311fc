package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/apitoken"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// stack is the API as serve wires it with --auth-config: the real fleet over a real
// Git server, the access decorator counting from the fleet repository, the Gate over
// a real API token file, and a status tracker for the event streams.
type stack struct {
	*env
	tokens map[string]string // token name → token
	tr     *status.Tracker
}

// Tenants of the table: the principals' own, and another one.
const own, other = "acme", "globex"

func newStack(t *testing.T, removalsPerHour int) *stack {
	t.Helper()
	dir := t.TempDir()
	s := &stack{tokens: map[string]string{}}
	var file strings.Builder
	file.WriteString("tokens:\n")
	for _, tk := range []struct {
		name, tenant string
		role         store.Role
	}{
		{"viewer", own, store.RoleViewer}, {"editor", own, store.RoleEditor}, {"admin", own, store.RoleAdmin},
		{"rival", other, store.RoleAdmin}, {"dashboard", own, store.RoleViewer},
	} {
		tok, sum, err := apitoken.Generate()
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[tk.name] = tok
		fmt.Fprintf(&file, "- {name: %s, tenant: %s, role: %s, sha256: %s}\n", tk.name, tk.tenant, tk.role, sum)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("tokens.yaml", file.String())
	conf, err := access.Load(write("auth.yaml", fmt.Sprintf(`apiTokens: {file: tokens.yaml}
rules:
  # The dashboard's backend acts for signed-in users.
  - {subjects: ["token:dashboard"], tenants: [%s], role: editor, actAs: true}
limits: {readsPerMinute: 100000, writesPerMinute: 100000, storesPerTenant: 100, removalsPerHour: %d}
`, own, removalsPerHour)))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := apitoken.Open(conf.APITokens.File, nil)
	if err != nil {
		t.Fatal(err)
	}
	gate := access.NewGate(access.NewPolicy(conf), tokens)
	s.tr = status.New(status.Options{})
	t.Cleanup(s.tr.Close)
	s.tr.SetConnected(true)
	s.tr.Published("x", "main@sha1:c1")
	s.env = newEnvWrapped(t, api.Options{Authenticate: gate.Principal, Status: s.tr, GitHub: &receiver{}, Logs: newFakeLogs()}, func(f *fleet.Service) api.Service {
		return access.NewService(f, f, access.Options{Limits: conf.Limits, DefaultTenant: conf.DefaultTenant})
	})
	return s
}

func (s *stack) as(name string) []string {
	if name == "" {
		return nil
	}
	return []string{"Authorization", "Bearer " + s.tokens[name]}
}

// create makes a store of tenant as an admin of it, under request id key, and lets
// the tracker know it as the cluster would.
func (s *stack) create(t *testing.T, by, name, tenant, key string) {
	t.Helper()
	body := shop(name)
	body["tenant"] = tenant
	s.expect(s.do("POST", "/api/v1/stores", body, append(s.as(by), "Idempotency-Key", key)...), http.StatusAccepted)
	s.tr.Load(name, status.Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0", Shard: "x"})
}

// probe is one request of a row, for the own tenant's store or the other's.
type probe struct {
	method, path string
	body         any
}

// A row's answer per role: allowed (the status given), 404, 403 or 401.
type want struct{ viewer, editor, admin int }

// The routes × roles × tenants table. Its routes come from openapi.json: a route
// there without rows here fails the test, and so does a row for a route it does not
// document.
func TestRoutesRolesTenants(t *testing.T) {
	s := newStack(t, 100)
	s.create(t, "admin", "acme-shop", own, "req-acme")
	s.create(t, "rival", "globex-shop", other, "req-globex")
	// Deleted stores, for purge.
	s.create(t, "admin", "acme-old", own, "req-acme-old")
	s.create(t, "rival", "globex-old", other, "req-globex-old")
	s.expect(s.do("DELETE", "/api/v1/stores/acme-old", nil, s.as("admin")...), http.StatusAccepted)
	s.expect(s.do("DELETE", "/api/v1/stores/globex-old", nil, s.as("rival")...), http.StatusAccepted)

	const ok, dry, nf, fb = http.StatusOK, http.StatusOK, http.StatusNotFound, http.StatusForbidden
	read := func(p func(tenant string) string) func(string) []probe {
		return func(tenant string) []probe { return []probe{{"GET", p(tenant), nil}} }
	}
	storeOf := func(tenant string) string { return map[string]string{own: "acme-shop", other: "globex-shop"}[tenant] }
	oldOf := func(tenant string) string { return map[string]string{own: "acme-old", other: "globex-old"}[tenant] }
	// Each tenant's store's create commit, read by an admin of that tenant.
	shaOf := map[string]string{}
	for tenant, who := range map[string]string{own: "admin", other: "rival"} {
		h := s.expect(s.do("GET", "/api/v1/stores/"+storeOf(tenant)+"/history", nil, s.as(who)...), http.StatusOK)
		shaOf[tenant] = h["items"].([]any)[0].(map[string]any)["commit"].(map[string]any)["sha"].(string)
	}
	type row struct {
		probes     func(tenant string) []probe
		own, other want
	}
	rows := map[string]row{
		"GET /api/v1/stores": {read(func(string) string { return "/api/v1/stores" }), want{ok, ok, ok}, want{ok, ok, ok}},
		"POST /api/v1/stores": {func(tenant string) []probe {
			b := shop("new-" + tenant)
			b["tenant"] = tenant
			return []probe{{"POST", "/api/v1/stores?dryRun=true", b}}
		}, want{fb, dry, dry}, want{fb, fb, fb}},
		"GET /api/v1/stores/{name}": {read(func(t string) string { return "/api/v1/stores/" + storeOf(t) }), want{ok, ok, ok}, want{nf, nf, nf}},
		"PATCH /api/v1/stores/{name}": {func(t string) []probe {
			return []probe{{"PATCH", "/api/v1/stores/" + storeOf(t) + "?dryRun=true", `{"plan":"standard"}`}}
		}, want{fb, dry, dry}, want{nf, nf, nf}},
		"DELETE /api/v1/stores/{name}": {func(t string) []probe {
			return []probe{{"DELETE", "/api/v1/stores/" + storeOf(t) + "?dryRun=true", nil}}
		}, want{fb, dry, dry}, want{nf, nf, nf}},
		"DELETE /api/v1/stores/{name} (purge)": {func(t string) []probe {
			return []probe{{"DELETE", "/api/v1/stores/" + oldOf(t) + "?purge=true&dryRun=true", nil}}
		}, want{fb, fb, dry}, want{nf, nf, nf}},
		"GET /api/v1/stores/{name}/history":       {read(func(t string) string { return "/api/v1/stores/" + storeOf(t) + "/history" }), want{ok, ok, ok}, want{nf, nf, nf}},
		"GET /api/v1/stores/{name}/history/{sha}": {read(func(t string) string { return "/api/v1/stores/" + storeOf(t) + "/history/" + shaOf[t] }), want{ok, ok, ok}, want{nf, nf, nf}},
		"GET /api/v1/requests/{id}":               {read(func(t string) string { return "/api/v1/requests/req-" + t }), want{ok, ok, ok}, want{nf, nf, nf}},
		"GET /api/v1/stores/{name}/events":        {read(func(t string) string { return "/api/v1/stores/" + storeOf(t) + "/events" }), want{ok, ok, ok}, want{nf, nf, nf}},
		"GET /api/v1/events":                      {read(func(string) string { return "/api/v1/events" }), want{ok, ok, ok}, want{ok, ok, ok}},
		"GET /api/v1/stores/{name}/logs":          {read(func(t string) string { return "/api/v1/stores/" + storeOf(t) + "/logs?tailLines=5" }), want{ok, ok, ok}, want{nf, nf, nf}},
		// GitHub's signature decides, never a role: an unsigned delivery is 401 with
		// any bearer token.
		"POST /api/v1/github/webhook": {func(string) []probe {
			return []probe{{"POST", api.WebhookPath, `{"zen":"Keep it logically awesome."}`}}
		}, want{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusUnauthorized}, want{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusUnauthorized}},
	}

	// Every operation of the document has its rows, and every row its operation.
	doc := s.spec.doc["paths"].(map[string]any)
	documented := map[string]bool{}
	for path, item := range doc {
		if !strings.HasPrefix(path, "/api/") {
			continue
		}
		for m := range item.(map[string]any) {
			if m == "parameters" {
				continue
			}
			op := strings.ToUpper(m) + " " + path
			documented[op] = true
			if _, has := rows[op]; !has {
				t.Errorf("%s is in openapi.json but has no rows in the table", op)
			}
		}
	}
	for op := range rows {
		if !documented[strings.TrimSuffix(op, " (purge)")] {
			t.Errorf("the table has rows for %s, which openapi.json does not document", op)
		}
	}

	ops := make([]string, 0, len(rows))
	for op := range rows {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	before := s.commits()
	for _, op := range ops {
		r := rows[op]
		for _, tenant := range []string{own, other} {
			w := r.own
			if tenant == other {
				w = r.other
			}
			for _, role := range []string{"", "viewer", "editor", "admin"} {
				expect := map[string]int{"": http.StatusUnauthorized, "viewer": w.viewer, "editor": w.editor, "admin": w.admin}[role]
				for _, p := range r.probes(tenant) {
					got, body := s.send(t, p, s.as(role))
					if got != expect {
						t.Errorf("%s, %s store, role %q: %s %s answered %d, want %d: %s", op, tenant, role, p.method, p.path, got, expect, body)
					}
					switch {
					case tenant != other || role == "":
					case got == http.StatusOK && strings.Contains(body, other):
						t.Errorf("%s, role %q: the answer shows the other tenant's store: %s", op, role, body)
					case got == http.StatusNotFound:
						// Word for word the answer for a store that never existed.
						ghost := probe{p.method, strings.ReplaceAll(p.path, other, "ghost"), p.body}
						_, gb := s.send(t, ghost, s.as(role))
						if d, gd := detail(t, body), detail(t, gb); strings.ReplaceAll(d, other, "ghost") != gd {
							t.Errorf("%s, role %q: another tenant's store answers %q, one that does not exist %q", op, role, d, gd)
						}
					}
				}
			}
		}
	}
	if n := s.commits(); n != before {
		t.Errorf("the table's probes committed %d times; they are dry runs and reads", n-before)
	}
}

// send makes one probe. An event stream is read until its first event and then
// left; its answer is what the stream showed before it.
func (s *stack) send(t *testing.T, p probe, auth []string) (int, string) {
	t.Helper()
	if !strings.HasSuffix(p.path, "/events") {
		r := s.do(p.method, p.path, p.body, auth...)
		return r.status, string(r.body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, p.method, s.api.URL+p.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(auth); i += 2 {
		req.Header.Set(auth[i], auth[i+1])
	}
	res, err := s.api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b := make([]byte, 4096)
		n, _ := res.Body.Read(b)
		return res.StatusCode, string(b[:n])
	}
	sc := bufio.NewScanner(res.Body)
	var seen strings.Builder
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "data: ") {
			break
		}
	}
	return res.StatusCode, seen.String()
}

// The event streams show a principal only its tenants' stores: the fleet-wide one
// leaves out every event of another tenant's store, status and Kubernetes events
// alike.
func TestEventStreamsByTenant(t *testing.T) {
	s := newStack(t, 100)
	s.create(t, "admin", "acme-shop", own, "req-acme")
	s.create(t, "rival", "globex-shop", other, "req-globex")
	// Purged stores: only their history still names their tenant.
	for _, c := range []struct{ by, name, tenant string }{{"admin", "acme-gone", own}, {"rival", "globex-gone", other}} {
		s.create(t, c.by, c.name, c.tenant, "req-"+c.name)
		s.expect(s.do("DELETE", "/api/v1/stores/"+c.name, nil, s.as(c.by)...), http.StatusAccepted)
		s.expect(s.do("DELETE", "/api/v1/stores/"+c.name+"?purge=true", nil, s.as(c.by)...), http.StatusAccepted)
		s.expect(s.do("DELETE", "/api/v1/stores/"+c.name+"?purge=true", nil, s.as(c.by)...), http.StatusAccepted)
		s.expect(s.do("GET", "/api/v1/stores/"+c.name, nil, s.as(c.by)...), http.StatusNotFound)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.api.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+s.tokens["viewer"])
	res, err := s.api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", res.StatusCode)
	}
	// Events arrive in order: a marker for the own store sent after the other's
	// event shows that the other's was left out, not merely late.
	s.tr.KubeEvent("globex-shop", status.KubeEvent{Store: "globex-shop", Reason: "RivalSecret"})
	s.tr.KubeEvent("globex-gone", status.KubeEvent{Store: "globex-gone", Reason: "RivalGone"})
	s.tr.KubeEvent("acme-gone", status.KubeEvent{Store: "acme-gone", Reason: "OwnGone"})
	s.tr.KubeEvent("acme-shop", status.KubeEvent{Store: "acme-shop", Reason: "Marker"})
	sc := bufio.NewScanner(res.Body)
	var seen []string
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		seen = append(seen, line)
		if strings.Contains(line, "Marker") {
			break
		}
	}
	all := strings.Join(seen, "\n")
	if !strings.Contains(all, `"acme-shop"`) || !strings.Contains(all, "Marker") || !strings.Contains(all, "OwnGone") {
		t.Fatalf("the own store's events are missing:\n%s", all)
	}
	if strings.Contains(all, "globex") || strings.Contains(all, "Rival") {
		t.Fatalf("another tenant's store shows in the stream:\n%s", all)
	}
}

// The Actor trailer is the authenticated subject, read back with git itself: a
// claimed X-Actor from a principal that may not act for others is refused and
// never reaches a trailer; one that may is recorded as On-Behalf-Of beside it.
func TestForgedActorNeverReachesATrailer(t *testing.T) {
	s := newStack(t, 100)
	s.create(t, "admin", "acme-shop", own, "req-acme")
	before := s.commits()
	forged := append(s.as("editor"), "X-Actor", "ceo@example.com")
	s.expect(s.do("PATCH", "/api/v1/stores/acme-shop", `{"plan":"standard"}`, forged...), http.StatusForbidden)
	s.expect(s.do("DELETE", "/api/v1/stores/acme-shop", nil, forged...), http.StatusForbidden)
	b := shop("forged")
	b["tenant"] = own
	s.expect(s.do("POST", "/api/v1/stores", b, forged...), http.StatusForbidden)
	if n := s.commits(); n != before {
		t.Fatalf("a forged X-Actor committed %d times", n-before)
	}

	s.expect(s.do("PATCH", "/api/v1/stores/acme-shop", `{"plan":"standard"}`, s.as("editor")...), http.StatusAccepted)
	if a, tn := trailer(s.env, "main", "Actor"), trailer(s.env, "main", "Tenant"); a != "token:editor" || tn != own {
		t.Fatalf("Actor %q Tenant %q, want token:editor and %s", a, tn, own)
	}
	s.expect(s.do("PATCH", "/api/v1/stores/acme-shop", `{"plan":"premium"}`, append(s.as("dashboard"), "X-Actor", "alice@example.com")...), http.StatusAccepted)
	if a, obo := trailer(s.env, "main", "Actor"), trailer(s.env, "main", "On-Behalf-Of"); a != "token:dashboard" || obo != "alice@example.com" {
		t.Fatalf("Actor %q On-Behalf-Of %q, want token:dashboard for alice@example.com", a, obo)
	}
	actors := s.git("log", "--format=%(trailers:key=Actor,valueonly)", "main")
	for _, claimed := range []string{"ceo@example.com", "alice@example.com"} {
		if strings.Contains(actors, claimed) {
			t.Fatalf("a claimed actor %s is in an Actor trailer:\n%s", claimed, actors)
		}
	}
}

// Past the hourly number of removals, a delete is refused to an editor with or
// without force and to an admin without it, and allowed to an admin who forces it.
func TestMassDeletionGuardOverHTTP(t *testing.T) {
	s := newStack(t, 1)
	for _, n := range []string{"one", "two", "three"} {
		s.create(t, "admin", n, own, "req-"+n)
	}
	s.expect(s.do("DELETE", "/api/v1/stores/one", nil, s.as("editor")...), http.StatusAccepted)
	before := s.commits()
	for _, c := range []struct{ who, query string }{{"editor", ""}, {"editor", "?force=true"}, {"admin", ""}} {
		p := s.expect(s.do("DELETE", "/api/v1/stores/two"+c.query, nil, s.as(c.who)...), http.StatusForbidden)
		if !strings.Contains(fmt.Sprint(p["detail"]), "removalsPerHour") {
			t.Fatalf("%s %s: the refusal does not name the limit: %v", c.who, c.query, p)
		}
	}
	if n := s.commits(); n != before {
		t.Fatalf("refused deletes committed %d times", n-before)
	}
	s.expect(s.do("DELETE", "/api/v1/stores/two?force=true", nil, s.as("admin")...), http.StatusAccepted)
}

func detail(t *testing.T, body string) string {
	t.Helper()
	var p struct{ Type, Detail string }
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("not a problem: %v: %s", err, body)
	}
	return p.Type + " " + p.Detail
}

// An Idempotency-Key is the client's choice, so two principals may pick the same
// one: the second is another request, never answered with the first one's outcome
// (which would tell it another tenant's store name, commit and request).
func TestIdempotencyKeyIsPerPrincipal(t *testing.T) {
	s := newStack(t, 100)
	// No tenant in the body: each principal's only tenant is taken, so the two
	// requests below are byte for byte the same.
	body := shop("acme-shop")
	first := s.expect(s.do("POST", "/api/v1/stores", body, append(s.as("admin"), "Idempotency-Key", "shared-key")...), http.StatusAccepted)
	r := s.do("POST", "/api/v1/stores", body, append(s.as("rival"), "Idempotency-Key", "shared-key")...)
	if r.status < 400 || strings.Contains(string(r.body), fmt.Sprint(first["requestId"])) {
		t.Fatalf("another principal's request with the same key got %d %s: the first request's outcome", r.status, r.body)
	}
	// The first principal's own retry is still answered as the same request.
	again := s.expect(s.do("POST", "/api/v1/stores", body, append(s.as("admin"), "Idempotency-Key", "shared-key")...), http.StatusAccepted)
	if again["requestId"] != first["requestId"] {
		t.Fatalf("the retry got request %v, want %v", again["requestId"], first["requestId"])
	}
}
