package serve_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// TestServedClustersReadyzMetricsArtifactURL: one gitops-api serves the test
// environment's cluster (local, a real control plane with Flux) and a cluster
// whose API server does not answer (west). /readyz?verbose lists the fleet and
// each cluster, local connected with this replica leading its shard publisher and
// west named as lost, and still passes (the API serves on); its JSON form says
// the same. local's ExternalArtifacts point at its own --cluster-artifact-url
// (another spelling of the artifacts listener), and its Flux fetches from it: the
// store gets applied. /metrics tells the two clusters apart.
func TestServedClustersReadyzMetricsArtifactURL(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	artifacts := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(artifacts)
	ownURL := "http://localhost:" + port
	s := runServe(t, &transcript{}, nil, "--data-dir", filepath.Join(t.TempDir(), "data"), "--fleet-url", env.FleetURL,
		"--kubeconfig", env.Kubeconfig, "--cluster", "local", "--cluster-kubeconfig", "west="+deadKubeconfig(t),
		"--chart-repository", "storefleet", "--artifacts-listen", artifacts, "--cluster-artifact-url", "local="+ownURL,
		"--log-format", "json", "--shutdown-grace", "5s")

	r := s.await("/readyz?verbose", http.StatusOK, "[+]cluster/local connected; shard publisher: leader")
	text := string(r.body)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 4 || lines[0] != "[+]fleet ok" || !strings.HasPrefix(lines[2], "[-]cluster/west lost: ") ||
		!strings.HasSuffix(lines[2], "; shard publisher: standby") || lines[3] != "readyz check passed" {
		t.Fatalf("/readyz?verbose:\n%s", text)
	}
	req, _ := http.NewRequest(http.MethodGet, s.url+"/readyz?verbose", nil)
	req.Header.Set("Accept", "application/json")
	res, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var rep struct {
		Status string
		Checks []struct {
			Name, State, Message, Cluster, Publisher string
			OK                                       bool
		}
	}
	if err := json.Unmarshal(body, &rep); err != nil || res.StatusCode != http.StatusOK || rep.Status != "ready" || len(rep.Checks) != 3 {
		t.Fatalf("/readyz?verbose as JSON: %d %v %s", res.StatusCode, err, body)
	}
	if c := rep.Checks[1]; c.Cluster != "local" || !c.OK || c.State != "connected" || c.Publisher != "leader" {
		t.Errorf("local: %+v", c)
	}
	if c := rep.Checks[2]; c.Cluster != "west" || c.OK || c.State != "lost" || c.Message == "" || c.Publisher != "standby" {
		t.Errorf("west: %+v", c)
	}
	// Plain /readyz is as before.
	if r := s.do("GET", "/readyz", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), "not connected: cluster west") {
		t.Errorf("/readyz: %d %s", r.status, r.body)
	}

	const name = "own-url"
	if r := s.do("POST", "/api/v1/stores", storeBody(name)); r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	// Applied means local's kustomize-controller fetched the shard's artifact, by
	// the URL it was given.
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		var v struct{ Status struct{ Phase string } }
		r := s.do("GET", "/api/v1/stores/"+name, "")
		_ = json.Unmarshal(r.body, &v)
		if p := v.Status.Phase; p == "applied" || p == "installing" || p == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never applied: %s\nlogs:\n%s", name, r.body, s.err)
		}
	}
	var l unstructured.UnstructuredList
	l.SetAPIVersion(sourcev1.GroupVersion.String())
	l.SetKind(sourcev1.ExternalArtifactKind + "List")
	if err := env.Client.List(ctx, &l, client.InNamespace("flux-system")); err != nil {
		t.Fatal(err)
	}
	shard := store.ShardObjectName(store.Shard(name))
	found := false
	for _, o := range l.Items {
		u, _, _ := unstructured.NestedString(o.Object, "status", "artifact", "url")
		if o.GetName() == shard {
			found = true
			if !strings.HasPrefix(u, ownURL+"/artifacts/local/") {
				t.Errorf("ExternalArtifact %s: url %q, want local's own %s/artifacts/local/…", shard, u, ownURL)
			}
		}
	}
	if !found {
		t.Fatalf("no ExternalArtifact %s", shard)
	}

	metrics := scrape(t, metricsURL(s.err.String()))
	for _, want := range []string{
		`storefleet_cluster_connected{cluster="local"} 1`,
		`storefleet_cluster_connected{cluster="west"} 0`,
		`storefleet_shard_publish_queue_depth{cluster="west"} 0`,
		`storefleet_shard_publishes_total{cluster="local",result="ok"}`,
		`storefleet_stores{cluster="west",phase="ready"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(metrics, `storefleet_stores{cluster="local",phase="applied"} 1`) &&
		!strings.Contains(metrics, `storefleet_stores{cluster="local",phase="installing"} 1`) &&
		!strings.Contains(metrics, `storefleet_stores{cluster="local",phase="ready"} 1`) {
		t.Errorf("/metrics does not count %s in local:\n%s", name, metrics)
	}
}

// deadKubeconfig reaches a port nothing listens on: a cluster that never answers.
func deadKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: "t"}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func scrape(t *testing.T, u string) string {
	t.Helper()
	if u == "" {
		t.Fatal("no metrics URL in the logs")
	}
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
