package api_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func trailer(e *env, rev, key string) string {
	return e.git("log", "-1", "--format=%(trailers:key="+key+",valueonly,separator=%x2C)", rev)
}

func TestStoreLifecycleOverHTTP(t *testing.T) {
	e := newEnv(t)
	before := e.commits()

	// create → files and one commit with trailers
	r := e.do("POST", "/api/v1/stores", shop("shop"), "X-Actor", "alice@example.com")
	acc := e.expect(r, http.StatusAccepted)
	if loc := r.header.Get("Location"); loc != "/api/v1/stores/shop" {
		t.Fatalf("Location %q", loc)
	}
	sha := acc["commit"].(map[string]any)["sha"].(string)
	createID := acc["requestId"].(string)
	if head := e.git("rev-parse", "main"); head != sha {
		t.Fatalf("202 names commit %s, remote main is %s: the 202 came before the push", sha, head)
	}
	if n := e.commits(); n != before+1 {
		t.Fatalf("%d commits after one create, want %d", n, before+1)
	}
	for key, want := range map[string]string{"Store": "shop", "Action": "create", "Actor": "alice@example.com", "Request-Id": createID, "Cluster": "local"} {
		if got := trailer(e, "main", key); got != want {
			t.Errorf("trailer %s = %q, want %q", key, got, want)
		}
	}
	for _, f := range []string{"kustomization.yaml", "namespace.yaml", "rbac.yaml", "policy.yaml", "helmrelease.yaml"} {
		if _, ok := e.file(storeDir("shop") + "/" + f); !ok {
			t.Errorf("%s missing after create", f)
		}
	}

	// get
	got := e.expect(e.do("GET", "/api/v1/stores/shop", nil), http.StatusOK)
	if got["status"].(map[string]any)["phase"] != "committed" || got["commit"].(map[string]any)["sha"] != sha {
		t.Fatalf("GET after create: %v", got)
	}
	if got["settings"].(map[string]any)["title"] != "Shop shop" || got["domain"] != "shop.stores.localhost" {
		t.Fatalf("GET spec: %v", got)
	}
	req := e.expect(e.do("GET", "/api/v1/requests/"+createID, nil), http.StatusOK)
	if req["state"] != "committed" || req["commit"].(map[string]any)["sha"] != sha {
		t.Fatalf("request outcome %v", req)
	}

	// duplicate → 409, no commit
	n := e.commits()
	p := e.expect(e.do("POST", "/api/v1/stores", shop("shop")), http.StatusConflict)
	if p["type"] != "urn:storefleet:problem:conflict" {
		t.Fatalf("problem %v", p)
	}
	if e.commits() != n {
		t.Fatal("a refused duplicate made a commit")
	}

	// patch → one commit changing the HelmRelease
	hrBefore, _ := e.file(storeDir("shop") + "/helmrelease.yaml")
	acc = e.expect(e.do("PATCH", "/api/v1/stores/shop", `{"plan":"standard","settings":{"title":"Shop 2"}}`, "X-Actor", "bob"), http.StatusAccepted)
	patchID := acc["requestId"].(string)
	if e.commits() != n+1 {
		t.Fatalf("patch made %d commits", e.commits()-n)
	}
	changed := e.git("diff", "--name-only", "main~1", "main")
	if !strings.Contains(changed, storeDir("shop")+"/helmrelease.yaml") {
		t.Fatalf("patch commit did not change the HelmRelease: %s", changed)
	}
	hrAfter, _ := e.file(storeDir("shop") + "/helmrelease.yaml")
	if hrBefore == hrAfter || !strings.Contains(hrAfter, "title: Shop 2") || !strings.Contains(hrAfter, "plan: standard") {
		t.Fatalf("HelmRelease after patch:\n%s", hrAfter)
	}
	got = e.expect(e.do("GET", "/api/v1/stores/shop", nil), http.StatusOK)
	if got["plan"] != "standard" || got["settings"].(map[string]any)["adminEmail"] != "owner@example.com" {
		t.Fatalf("merge patch lost or missed fields: %v", got)
	}

	// a plan that shrinks storage → 422 naming the field, no commit
	n = e.commits()
	p = e.expect(e.do("PATCH", "/api/v1/stores/shop", `{"plan":"basic"}`), http.StatusUnprocessableEntity)
	if errs := p["errors"].([]any); errs[0].(map[string]any)["field"] != "plan" {
		t.Fatalf("shrink refused without naming plan: %v", p)
	}
	// immutable field → 422
	e.expect(e.do("PATCH", "/api/v1/stores/shop", `{"engine":"medusa"}`), http.StatusUnprocessableEntity)
	if e.commits() != n {
		t.Fatal("a refused patch made a commit")
	}

	// delete → release gone, data kept
	acc = e.expect(e.do("DELETE", "/api/v1/stores/shop", nil, "X-Actor", "carol"), http.StatusAccepted)
	deleteID := acc["requestId"].(string)
	if _, ok := e.file(storeDir("shop") + "/helmrelease.yaml"); ok {
		t.Fatal("helmrelease.yaml still there after delete")
	}
	ns, ok := e.file(storeDir("shop") + "/namespace.yaml")
	if !ok || !strings.Contains(ns, "kustomize.toolkit.fluxcd.io/prune: disabled") {
		t.Fatalf("namespace not retained with prune disabled:\n%s", ns)
	}
	got = e.expect(e.do("GET", "/api/v1/stores/shop", nil), http.StatusOK)
	if got["status"].(map[string]any)["phase"] != "retained" {
		t.Fatalf("phase after delete: %v", got["status"])
	}
	e.expect(e.do("DELETE", "/api/v1/stores/shop", nil), http.StatusConflict)
	e.expect(e.do("PATCH", "/api/v1/stores/shop", `{"plan":"premium"}`), http.StatusConflict)

	// purge: step 1 makes the namespace prunable, step 2 removes it
	acc = e.expect(e.do("DELETE", "/api/v1/stores/shop?purge=true", nil, "X-Actor", "carol"), http.StatusAccepted)
	purge1ID := acc["requestId"].(string)
	ns, ok = e.file(storeDir("shop") + "/namespace.yaml")
	if !ok || !strings.Contains(ns, "kustomize.toolkit.fluxcd.io/prune: enabled") {
		t.Fatalf("purge step 1: namespace not prunable:\n%s", ns)
	}
	acc = e.expect(e.do("DELETE", "/api/v1/stores/shop?purge=true", nil, "X-Actor", "carol"), http.StatusAccepted)
	purge2ID := acc["requestId"].(string)
	if _, ok := e.file(storeDir("shop") + "/namespace.yaml"); ok {
		t.Fatal("namespace still in the fleet after purge")
	}
	e.expect(e.do("GET", "/api/v1/stores/shop", nil), http.StatusNotFound)

	// history lists them all with actor and request id, newest first; both purge
	// steps are recorded as the purges they are
	h := e.expect(e.do("GET", "/api/v1/stores/shop/history", nil), http.StatusOK)
	items := h["items"].([]any)
	want := []struct{ action, actor, id string }{
		{"purge", "carol", purge2ID}, {"purge", "carol", purge1ID}, {"delete", "carol", deleteID},
		{"update", "bob", patchID}, {"create", "alice@example.com", createID},
	}
	if len(items) != len(want) {
		t.Fatalf("history has %d entries, want %d: %s", len(items), len(want), fmt.Sprint(items))
	}
	for i, w := range want {
		it := items[i].(map[string]any)
		if it["action"] != w.action || it["actor"] != w.actor || it["requestId"] != w.id {
			t.Errorf("history[%d] = %v, want %+v", i, it, w)
		}
	}
	fsck(t, e)
}

func fsck(t *testing.T, e *env) {
	t.Helper()
	e.git("fsck", "--strict", "--no-dangling")
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	n := e.commits()
	a := e.expect(e.do("POST", "/api/v1/stores", shop("idem"), "Idempotency-Key", "key-1"), http.StatusAccepted)
	b := e.expect(e.do("POST", "/api/v1/stores", shop("idem"), "Idempotency-Key", "key-1"), http.StatusAccepted)
	if a["commit"].(map[string]any)["sha"] != b["commit"].(map[string]any)["sha"] || a["requestId"] != "key-1" {
		t.Fatalf("retry answered differently:\n%v\n%v", a, b)
	}
	if e.commits() != n+1 {
		t.Fatalf("same Idempotency-Key twice made %d commits", e.commits()-n)
	}
	if got := trailer(e, "main", "Request-Id"); got != "key-1" {
		t.Fatalf("Request-Id trailer %q", got)
	}
	// The same key for a different request is refused, not answered with the first.
	p := e.expect(e.do("POST", "/api/v1/stores", shop("other"), "Idempotency-Key", "key-1"), http.StatusUnprocessableEntity)
	if p["errors"].([]any)[0].(map[string]any)["field"] != "Idempotency-Key" {
		t.Fatalf("%v", p)
	}
	e.expect(e.do("POST", "/api/v1/stores", shop("x1"), "Idempotency-Key", "bad key: Request-Id forged"), http.StatusBadRequest)
	if e.commits() != n+1 {
		t.Fatal("refused requests made commits")
	}
}

func TestDuplicateWhilePending(t *testing.T) {
	e := newEnv(t)
	n := e.commits()
	const k = 8
	statuses := make([]int, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.do("POST", "/api/v1/stores", shop("race")).status
		}()
	}
	wg.Wait()
	accepted, conflicts := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusAccepted:
			accepted++
		case http.StatusConflict:
			conflicts++
		}
	}
	if accepted != 1 || conflicts != k-1 {
		t.Fatalf("%d concurrent creates of one name: %v", k, statuses)
	}
	if e.commits() != n+1 {
		t.Fatalf("%d commits, want 1", e.commits()-n)
	}
}

func TestDryRunCommitsNothing(t *testing.T) {
	e := newEnv(t)
	n := e.commits()
	d := e.expect(e.do("POST", "/api/v1/stores?dryRun=true", shop("dry")), http.StatusOK)
	changes := d["changes"].([]any)
	if len(changes) != 5 || d["dryRun"] != true {
		t.Fatalf("dry-run create: %v", d)
	}
	for _, c := range changes {
		c := c.(map[string]any)
		if c["op"] != "add" || !strings.HasPrefix(c["path"].(string), storeDir("dry")+"/") || c["content"] == "" {
			t.Fatalf("change %v", c)
		}
	}
	if e.commits() != n {
		t.Fatal("dry run committed")
	}
	e.expect(e.do("GET", "/api/v1/stores/dry", nil), http.StatusNotFound)

	e.expect(e.do("POST", "/api/v1/stores", shop("dry")), http.StatusAccepted)
	n = e.commits()
	d = e.expect(e.do("PATCH", "/api/v1/stores/dry?dryRun=true", `{"settings":{"title":"New"}}`), http.StatusOK)
	changes = d["changes"].([]any)
	if len(changes) != 1 {
		t.Fatalf("dry-run patch of the title changes %d files: %v", len(changes), changes)
	}
	c := changes[0].(map[string]any)
	if c["op"] != "modify" || !strings.HasSuffix(c["path"].(string), "/helmrelease.yaml") ||
		!regexp.MustCompile(`(?m)^-\s+title: Shop dry$`).MatchString(c["diff"].(string)) ||
		!regexp.MustCompile(`(?m)^\+\s+title: New$`).MatchString(c["diff"].(string)) {
		t.Fatalf("dry-run patch diff: %v", c)
	}
	d = e.expect(e.do("DELETE", "/api/v1/stores/dry?dryRun=true", nil), http.StatusOK)
	found := false
	for _, c := range d["changes"].([]any) {
		c := c.(map[string]any)
		if strings.HasSuffix(c["path"].(string), "/helmrelease.yaml") && c["op"] == "delete" {
			found = true
		}
	}
	if !found {
		t.Fatalf("dry-run delete does not remove the HelmRelease: %v", d)
	}
	if e.commits() != n {
		t.Fatal("dry runs committed")
	}
	got := e.expect(e.do("GET", "/api/v1/stores/dry", nil), http.StatusOK)
	if got["settings"].(map[string]any)["title"] != "Shop dry" {
		t.Fatal("dry-run patch changed the store")
	}
}
