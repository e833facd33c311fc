package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestHistoryDiff: GET /stores/{name}/history/{sha} gives one change of the store's
// history with the files it changed, as a dry run shows them: the create adds the
// folder, a plan change modifies it. A commit that is not one of this store's
// changes is not found; a malformed one is a problem naming the sha and its rule.
func TestHistoryDiff(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", shop("hist")), http.StatusAccepted)
	e.expect(e.do("POST", "/api/v1/stores", shop("other")), http.StatusAccepted)
	e.expect(e.do("PATCH", "/api/v1/stores/hist", `{"plan":"standard"}`), http.StatusAccepted)

	h := e.expect(e.do("GET", "/api/v1/stores/hist/history", nil), http.StatusOK)
	items := h["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("history: %v", h)
	}
	sha := func(it any) string { return it.(map[string]any)["commit"].(map[string]any)["sha"].(string) }
	update, create := sha(items[0]), sha(items[1])

	ch := e.expect(e.do("GET", "/api/v1/stores/hist/history/"+update, nil), http.StatusOK)
	if ch["action"] != "update" || ch["requestId"] == "" {
		t.Fatalf("the update's entry: %v", ch)
	}
	changes := ch["changes"].([]any)
	var diffs []string
	for _, c := range changes {
		c := c.(map[string]any)
		if c["op"] != "modify" || !strings.HasPrefix(c["path"].(string), "stores/") || !strings.Contains(c["path"].(string), "/hist/") {
			t.Fatalf("a plan change's file: %v", c)
		}
		diffs = append(diffs, c["diff"].(string))
	}
	all := strings.Join(diffs, "\n")
	if len(changes) == 0 || !strings.Contains(all, "+") || !strings.Contains(all, "-") || !strings.Contains(all, "standard") {
		t.Fatalf("the plan change's diff does not show basic giving way to standard:\n%s", all)
	}

	ch = e.expect(e.do("GET", "/api/v1/stores/hist/history/"+create, nil), http.StatusOK)
	if ch["action"] != "create" {
		t.Fatalf("the create's entry: %v", ch)
	}
	for _, c := range ch["changes"].([]any) {
		if c.(map[string]any)["op"] != "add" {
			t.Fatalf("the create changed a file it did not add: %v", c)
		}
	}
	if len(ch["changes"].([]any)) == 0 {
		t.Fatal("the create added no file")
	}

	// other's create is a real commit, but no change of hist.
	o := e.expect(e.do("GET", "/api/v1/stores/other/history", nil), http.StatusOK)
	e.expect(e.do("GET", "/api/v1/stores/hist/history/"+sha(o["items"].([]any)[0]), nil), http.StatusNotFound)
	e.expect(e.do("GET", "/api/v1/stores/hist/history/"+strings.Repeat("0", 40), nil), http.StatusNotFound)
	e.expect(e.do("GET", "/api/v1/stores/nope/history/"+update, nil), http.StatusNotFound)
	p := e.expect(e.do("GET", "/api/v1/stores/hist/history/"+strings.ToUpper(update), nil), http.StatusBadRequest)
	if errs, _ := p["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "sha" || errs[0].(map[string]any)["rule"] != "pattern" {
		t.Fatalf("a malformed sha: %v", p)
	}
}
