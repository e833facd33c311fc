package api_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
)

// 100 concurrent creates: every one is acknowledged and lands exactly once, group
// commit makes fewer commits than requests, and the repository is sound.
func TestConcurrentCreates(t *testing.T) {
	e := newEnv(t)
	before := e.commits()
	const n = 100
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.do("POST", "/api/v1/stores", shop(fmt.Sprintf("c-%03d", i))).status
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusAccepted {
			t.Fatalf("create %d: status %d", i, s)
		}
	}
	commits := e.commits() - before
	if commits >= n {
		t.Fatalf("%d commits for %d requests: no group commit", commits, n)
	}
	// Every store folder exists once, and each has exactly one create trailer.
	dirs := strings.Fields(e.git("ls-tree", "-d", "--name-only", "-r", "main", "stores/local"))
	var stores []string
	for _, d := range dirs {
		if strings.Count(d, "/") == 3 {
			stores = append(stores, d[strings.LastIndex(d, "/")+1:])
		}
	}
	sort.Strings(stores)
	if len(stores) != n {
		t.Fatalf("%d store folders, want %d", len(stores), n)
	}
	creates := strings.Fields(e.git("log", "--format=%(trailers:key=Store,valueonly,separator=%x20)", "main"))
	seen := map[string]int{}
	for _, s := range creates {
		seen[s]++
	}
	for i := range n {
		name := fmt.Sprintf("c-%03d", i)
		if seen[name] != 1 {
			t.Errorf("store %s appears in %d commits' trailers", name, seen[name])
		}
	}
	list := e.expect(e.do("GET", "/api/v1/stores?limit=1000", nil), http.StatusOK)
	if got := len(list["items"].([]any)); got != n {
		t.Fatalf("list has %d stores", got)
	}
	t.Logf("%d creates in %d commits", n, commits)
	fsck(t, e)
}

func TestListPagesAndFilters(t *testing.T) {
	e := newEnv(t)
	for i := range 7 {
		s := shop(fmt.Sprintf("p-%d", i))
		if i%2 == 1 {
			s = with(s, "plan", "premium")
		}
		e.expect(e.do("POST", "/api/v1/stores", s), http.StatusAccepted)
	}
	var names []string
	cont := ""
	pages := 0
	for {
		q := "/api/v1/stores?limit=3"
		if cont != "" {
			q += "&continue=" + cont
		}
		page := e.expect(e.do("GET", q, nil), http.StatusOK)
		pages++
		for _, it := range page["items"].([]any) {
			names = append(names, it.(map[string]any)["name"].(string))
		}
		c, _ := page["continue"].(string)
		if c == "" {
			break
		}
		cont = c
	}
	if pages != 3 || strings.Join(names, ",") != "p-0,p-1,p-2,p-3,p-4,p-5,p-6" {
		t.Fatalf("%d pages: %v", pages, names)
	}
	prem := e.expect(e.do("GET", "/api/v1/stores?plan=premium&engine=woocommerce&cluster=local&phase=committed", nil), http.StatusOK)
	if len(prem["items"].([]any)) != 3 {
		t.Fatalf("premium filter: %v", prem)
	}
	e.expect(e.do("DELETE", "/api/v1/stores/p-0", nil), http.StatusAccepted)
	ret := e.expect(e.do("GET", "/api/v1/stores?phase=retained", nil), http.StatusOK)
	if items := ret["items"].([]any); len(items) != 1 || items[0].(map[string]any)["name"] != "p-0" {
		t.Fatalf("phase filter: %v", ret)
	}
	none := e.expect(e.do("GET", "/api/v1/stores?engine=medusa", nil), http.StatusOK)
	if len(none["items"].([]any)) != 0 {
		t.Fatalf("engine filter: %v", none)
	}
}

// After a restart the index comes from Git: names at once, specs on first use.
func TestRestartReadsStoresFromGit(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", shop("r-a")), http.StatusAccepted)
	e.expect(e.do("POST", "/api/v1/stores", with(shop("r-b"), "plan", "premium", "settings.title", "Bé: {x}")), http.StatusAccepted)
	e.expect(e.do("POST", "/api/v1/stores", shop("r-c")), http.StatusAccepted)
	e.expect(e.do("DELETE", "/api/v1/stores/r-c", nil), http.StatusAccepted)
	e.start()
	got := e.expect(e.do("GET", "/api/v1/stores/r-b", nil), http.StatusOK)
	if got["plan"] != "premium" || got["settings"].(map[string]any)["title"] != "Bé: {x}" || got["commit"] == nil {
		t.Fatalf("after restart: %v", got)
	}
	prem := e.expect(e.do("GET", "/api/v1/stores?plan=premium", nil), http.StatusOK)
	if items := prem["items"].([]any); len(items) != 1 || items[0].(map[string]any)["name"] != "r-b" {
		t.Fatalf("filter after restart: %v", prem)
	}
	ret := e.expect(e.do("GET", "/api/v1/stores?phase=retained", nil), http.StatusOK)
	if items := ret["items"].([]any); len(items) != 1 || items[0].(map[string]any)["name"] != "r-c" {
		t.Fatalf("retained after restart: %v", ret)
	}
	e.expect(e.do("POST", "/api/v1/stores", shop("r-a")), http.StatusConflict)
	e.expect(e.do("PATCH", "/api/v1/stores/r-a", `{"plan":"standard"}`), http.StatusAccepted)
	e.expect(e.do("DELETE", "/api/v1/stores/r-c?purge=true", nil), http.StatusAccepted)
}
