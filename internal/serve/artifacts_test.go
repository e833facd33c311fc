package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/serve"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// TestArtifactsOnTheirOwnListener: with a cluster, serve publishes a store's shard
// with a URL on --artifacts-listen, which serves the tarball (its digest checked);
// the API port answers 404 for the same path, so only what may reach the artifact
// port (Flux, by the chart's NetworkPolicy) downloads fleet contents. Flux applies
// the shard from there.
func TestArtifactsOnTheirOwnListener(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	out := &bytes.Buffer{}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, []string{"--listen", "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0",
			"--data-dir", filepath.Join(t.TempDir(), "data"), "--fleet-url", env.FleetURL, "--kubeconfig", env.Kubeconfig,
			"--chart-repository", "storefleet", "--chart-versions", env.ChartRepoURL + "/index.yaml", "--shutdown-grace", "5s"},
			func(string) string { return "" }, pw, out)
		pw.Close()
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	}()
	sc := bufio.NewScanner(pr)
	var api string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "gitops-api listening on "); ok {
			api = u
			break
		}
	}
	if api == "" {
		t.Fatalf("serve did not start\n%s", out)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if st, err := create(http.DefaultClient, api, "artifacts", "a-1"); err != nil || st != http.StatusAccepted {
		t.Fatalf("create: %d %v", st, err)
	}
	// With a cluster the logs route reads it: this one has no node, so no Pod runs.
	lres, err := http.Get(api + "/api/v1/stores/artifacts/logs")
	if err != nil {
		t.Fatal(err)
	}
	lbody, _ := io.ReadAll(lres.Body)
	lres.Body.Close()
	if lres.StatusCode != http.StatusConflict || !strings.Contains(string(lbody), "urn:storefleet:problem:no-running-pods") {
		t.Errorf("logs of a store without running pods: %d %s", lres.StatusCode, lbody)
	}

	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	shard := store.Shard("artifacts")
	var artURL, digest string
	deadline := time.Now().Add(time.Minute)
	for artURL == "" {
		u, err := dyn.Resource(kube.ExternalArtifacts).Namespace("flux-system").Get(ctx, store.ShardObjectName(shard), metav1.GetOptions{})
		if err == nil {
			artURL, _, _ = unstructured.NestedString(u.Object, "status", "artifact", "url")
			digest, _, _ = unstructured.NestedString(u.Object, "status", "artifact", "digest")
		}
		if artURL == "" && time.Now().After(deadline) {
			t.Fatalf("shard %s not published: %v", shard, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	au, err := url.Parse(artURL)
	if err != nil {
		t.Fatal(err)
	}
	apiURL, _ := url.Parse(api)
	if au.Host == apiURL.Host || !strings.HasPrefix(au.Path, "/artifacts/") {
		t.Fatalf("artifact URL %s: want the artifact listener, not the API's %s", artURL, apiURL.Host)
	}

	res, err := http.Get(artURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sum := sha256.Sum256(body)
	if res.StatusCode != http.StatusOK || "sha256:"+hex.EncodeToString(sum[:]) != digest {
		t.Fatalf("GET %s: %d, %d bytes, digest %x; want 200 and %s", artURL, res.StatusCode, len(body), sum, digest)
	}
	res, err = http.Get(api + au.Path)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET %s on the API port: %d, want 404", au.Path, res.StatusCode)
	}

	// Flux downloaded it from there and applied the shard.
	rev := ""
	for deadline = time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		u, err := dyn.Resource(kube.Kustomizations).Namespace("flux-system").Get(ctx, store.ShardObjectName(shard), metav1.GetOptions{})
		if err == nil {
			rev, _, _ = unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
		}
		if rev != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Kustomization %s never applied: %v", store.ShardObjectName(shard), err)
		}
	}
}
