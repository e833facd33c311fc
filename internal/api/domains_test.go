package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// A domain belongs to one store: not another store's, not another name's default
// (<name>.<base domain>), not a single-label host. Refusals name the field and rule
// and commit nothing.
func TestDomainsAreUnique(t *testing.T) {
	e := newEnv(t)
	with := func(name, domain string) map[string]any {
		s := shop(name)
		s["domain"] = domain
		return s
	}
	e.expect(e.do("POST", "/api/v1/stores", with("first", "shop.example.com")), http.StatusAccepted)
	e.expect(e.do("POST", "/api/v1/stores", shop("other")), http.StatusAccepted)
	n := e.commits()
	for _, c := range []struct {
		body      map[string]any
		rule      string
		inMessage string
	}{
		{with("second", "shop.example.com"), "unique", "first"},
		{with("second", "other.stores.localhost"), "unique", "other"},
		{with("second", "someone.stores.localhost"), "unique", "someone"},
		{with("second", "localhost"), "fqdn", "localhost"},
	} {
		p := e.expect(e.do("POST", "/api/v1/stores", c.body), http.StatusUnprocessableEntity)
		f, rule := firstError(t, p)
		detail := p["errors"].([]any)[0].(map[string]any)["detail"].(string)
		if f != "domain" || rule != c.rule || !strings.Contains(detail, c.inMessage) {
			t.Errorf("domain %s: %s/%s %q", c.body["domain"], f, rule, detail)
		}
	}
	for _, patch := range []string{`{"domain":"shop.example.com"}`, `{"domain":"first.stores.localhost"}`, `{"domain":"intranet"}`} {
		p := e.expect(e.do("PATCH", "/api/v1/stores/other", patch), http.StatusUnprocessableEntity)
		if f, _ := firstError(t, p); f != "domain" {
			t.Errorf("patch %s: %v", patch, p)
		}
	}
	if e.commits() != n {
		t.Fatal("a refused domain made a commit")
	}
	e.expect(e.do("PATCH", "/api/v1/stores/other", `{"domain":"other.example.com"}`), http.StatusAccepted)
	// After a restart, before or after the index is read, the domains are still taken.
	e.start()
	p := e.expect(e.do("POST", "/api/v1/stores", with("third", "other.example.com")), http.StatusUnprocessableEntity)
	if f, rule := firstError(t, p); f != "domain" || rule != "unique" {
		t.Fatalf("after a restart: %v", p)
	}
}

// Concurrent creates racing for one domain: one wins, the others are refused.
func TestConcurrentCreatesRaceForOneDomain(t *testing.T) {
	e := newEnv(t)
	n := e.commits()
	const k = 8
	statuses := make([]int, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := shop(fmt.Sprintf("racer-%d", i))
			s["domain"] = "race.example.com"
			statuses[i] = e.do("POST", "/api/v1/stores", s).status
		}()
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case http.StatusAccepted:
			won++
		case http.StatusUnprocessableEntity:
		default:
			t.Fatalf("statuses %v", statuses)
		}
	}
	if won != 1 || e.commits() != n+1 {
		t.Fatalf("%d creates took one domain (statuses %v, %d commits)", won, statuses, e.commits()-n)
	}
}

// A store goes only to a cluster this API writes for, with a chart version the
// chart source offers (here the repository's charts/: 0.1.0).
func TestKnownClustersAndChartVersions(t *testing.T) {
	e := newEnv(t)
	s := shop("shop")
	s["cluster"], s["version"] = "elsewhere", "9.9.9"
	p := e.expect(e.do("POST", "/api/v1/stores", s), http.StatusUnprocessableEntity)
	rules := map[string]string{}
	for _, fe := range p["errors"].([]any) {
		m := fe.(map[string]any)
		rules[m["field"].(string)] = m["rule"].(string)
		if m["field"] == "cluster" && !strings.Contains(m["detail"].(string), "local") {
			t.Errorf("cluster refused without naming the known ones: %v", m)
		}
		if m["field"] == "version" && !strings.Contains(m["detail"].(string), "0.1.0") {
			t.Errorf("version refused without naming the offered ones: %v", m)
		}
	}
	if rules["cluster"] != "oneOf" || rules["version"] != "oneOf" {
		t.Fatalf("problem %v", p)
	}
	s["cluster"], s["version"] = "local", "0.1.0"
	e.expect(e.do("POST", "/api/v1/stores", s), http.StatusAccepted)
	n := e.commits()
	p = e.expect(e.do("PATCH", "/api/v1/stores/shop", `{"version":"0.2.0"}`), http.StatusUnprocessableEntity)
	if f, rule := firstError(t, p); f != "version" || rule != "oneOf" {
		t.Fatalf("patch to a version not offered: %v", p)
	}
	if e.commits() != n {
		t.Fatal("a refused version made a commit")
	}
}
