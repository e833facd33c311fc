package serve_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// metricsURL is the /metrics address serve logged (JSON logs), "" if none.
func metricsURL(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct{ Msg, URL string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "metrics" {
			return line.URL
		}
	}
	return ""
}

// /metrics is served on the internal listener only: the API's port answers it 404
// like any unknown path, the internal one serves Prometheus' text with the API's
// requests counted by route pattern. The JSON logs carry the request id from the
// API's line to the fleet's.
func TestMetricsOnlyOnInternalListener(t *testing.T) {
	all := &transcript{}
	s := runServe(t, all, nil, "--data-dir", t.TempDir(), "--seed-dir", "../../fleet", "--log-format", "json")
	r := s.do("GET", "/metrics", "")
	if r.status != http.StatusNotFound {
		t.Fatalf("GET /metrics on the API's port: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "storefleet_") {
		t.Fatalf("the API's port shows metrics: %s", r.body)
	}
	req, _ := http.NewRequest("POST", s.url+"/api/v1/stores", strings.NewReader(`{"name":"metered","engine":"woocommerce","plan":"basic","settings":{"adminEmail":"o@example.com"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "trace-me-1")
	res, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d", res.StatusCode)
	}

	u := metricsURL(s.err.String())
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("no metrics URL on loopback in the logs:\n%s", s.err)
	}
	res, err = http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	text := string(body)
	for _, want := range []string{
		`storefleet_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`storefleet_http_requests_total{code="202",method="POST",route="/api/v1/stores"} 1`,
		`storefleet_fleet_commits_total 1`,
		`storefleet_fleet_commit_stores_count 1`,
		`storefleet_stores_by_tenant{tenant="` + store.DefaultTenant + `"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, text)
		}
	}
	// The internal listener serves nothing else.
	res, err = http.Get(strings.TrimSuffix(u, "/metrics") + "/api/v1/stores")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("the internal listener serves the API: %d", res.StatusCode)
	}

	// One request id from the API's line to the fleet's commit line.
	var seen []string
	sc := bufio.NewScanner(strings.NewReader(s.err.String()))
	for sc.Scan() {
		var line struct {
			Msg       string
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.RequestID == "trace-me-1" {
			seen = append(seen, line.Msg)
		}
	}
	if strings.Join(seen, ",") != "change committed,http" {
		t.Fatalf("lines with the request id: %q, want the fleet's commit then the API's request", seen)
	}
}
