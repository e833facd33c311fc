package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func entrySHA(it any) string {
	return it.(map[string]any)["commit"].(map[string]any)["sha"].(string)
}

// TestHistoryPaging: a store with more than 100 changes (its create and 130 updates)
// gives all of them, page after page: 50, 50 and 31 with limit=50, newest first, none
// twice and none left out, each page but the last naming the next in next and in a Link
// header; /history/{sha} finds the oldest change. A bad limit or before is a problem
// naming the field.
func TestHistoryPaging(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", shop("long")), http.StatusAccepted)
	for i := range 130 {
		e.expect(e.do("PATCH", "/api/v1/stores/long", fmt.Sprintf(`{"settings":{"title":"Long %d"}}`, i)), http.StatusAccepted)
	}

	var got []string
	var sizes []int
	path := "/api/v1/stores/long/history?limit=50"
	for range 5 {
		res := e.do("GET", path, nil)
		page := e.expect(res, http.StatusOK)
		items := page["items"].([]any)
		sizes = append(sizes, len(items))
		for _, it := range items {
			got = append(got, entrySHA(it))
		}
		next, _ := page["next"].(string)
		link := res.header.Get("Link")
		if next == "" {
			if link != "" {
				t.Errorf("the last page links a next one: %s", link)
			}
			break
		}
		if next != got[len(got)-1] {
			t.Errorf("next %s is not the page's last commit %s", next, got[len(got)-1])
		}
		path = "/api/v1/stores/long/history?" + url.Values{"limit": {"50"}, "before": {next}}.Encode()
		if want := "<" + path + `>; rel="next"`; link != want {
			t.Errorf("Link: %q, want %q", link, want)
		}
	}
	if fmt.Sprint(sizes) != "[50 50 31]" {
		t.Fatalf("page sizes %v, want [50 50 31]", sizes)
	}
	// Newest first, no duplicates, no gaps: the pages are the commits that changed the
	// store's folder, as git lists them.
	want := strings.Fields(e.git("log", "--format=%H", "main", "--", storeDir("long")))
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the pages, joined:\n%v\nwant git log's\n%v", got, want)
	}

	// The default page is 50; the oldest change is found on its own, however old.
	if d := e.expect(e.do("GET", "/api/v1/stores/long/history", nil), http.StatusOK); len(d["items"].([]any)) != 50 || d["next"] != got[49] {
		t.Errorf("the default page: %d entries, next %v", len(d["items"].([]any)), d["next"])
	}
	oldest := got[len(got)-1]
	if ch := e.expect(e.do("GET", "/api/v1/stores/long/history/"+oldest, nil), http.StatusOK); ch["action"] != "create" || entrySHA(ch) != oldest {
		t.Errorf("the oldest change: %v", ch)
	}

	e.expect(e.do("POST", "/api/v1/stores", shop("short")), http.StatusAccepted)
	short := e.expect(e.do("GET", "/api/v1/stores/short/history", nil), http.StatusOK)
	if _, ok := short["next"]; ok || len(short["items"].([]any)) != 1 {
		t.Errorf("a one-page history: %v", short)
	}
	for _, c := range []struct{ query, field, rule string }{
		{"limit=0", "limit", "range"},
		{"limit=501", "limit", "range"},
		{"limit=ten", "limit", "range"},
		{"limit=50&limit=60", "limit", "single"},
		{"before=" + strings.ToUpper(oldest), "before", "pattern"},
		{"before=abc", "before", "pattern"},
		// Well formed, but not one of this store's commits: another store's, none at all.
		{"before=" + entrySHA(short["items"].([]any)[0]), "before", "cursor"},
		{"before=" + strings.Repeat("0", 40), "before", "cursor"},
		{"page=2", "page", "unknown"},
	} {
		r := e.do("GET", "/api/v1/stores/long/history?"+c.query, nil)
		p := e.expect(r, http.StatusBadRequest)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			t.Errorf("%s: Content-Type %q", c.query, ct)
		}
		if errs, _ := p["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != c.field || errs[0].(map[string]any)["rule"] != c.rule {
			t.Errorf("%s: %v, want field %s rule %s", c.query, p, c.field, c.rule)
		}
	}
}

// TestHistoryPagingTenants: paging tells a principal nothing about a store it may not
// see: with or without a cursor, a good one or a bad one, the answer is the 404 the
// history without paging gives.
func TestHistoryPagingTenants(t *testing.T) {
	s := newStack(t, 100)
	s.create(t, "rival", "globex-shop", other, "req-globex")
	s.expect(s.do("PATCH", "/api/v1/stores/globex-shop", `{"plan":"standard"}`, s.as("rival")...), http.StatusAccepted)
	h := s.expect(s.do("GET", "/api/v1/stores/globex-shop/history?limit=1", nil, s.as("rival")...), http.StatusOK)
	next, _ := h["next"].(string)
	if len(h["items"].([]any)) != 1 || next == "" {
		t.Fatalf("the rival's own first page: %v", h)
	}
	base := s.expect(s.do("GET", "/api/v1/stores/globex-shop/history", nil, s.as("admin")...), http.StatusNotFound)
	for _, path := range []string{
		"/api/v1/stores/globex-shop/history?limit=1",
		"/api/v1/stores/globex-shop/history?before=" + next,
		"/api/v1/stores/globex-shop/history?limit=1&before=" + next,
		"/api/v1/stores/globex-shop/history?before=" + strings.Repeat("0", 40),
		"/api/v1/stores/globex-shop/history/" + next,
	} {
		p := s.expect(s.do("GET", path, nil, s.as("admin")...), http.StatusNotFound)
		if p["type"] != base["type"] || p["detail"] != base["detail"] || p["errors"] != nil {
			t.Errorf("%s: %v, want the answer without paging: %v", path, p, base)
		}
	}
}
