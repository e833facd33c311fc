package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/serve"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// TestFluxShardsThroughTheAPI: gitops-api with --flux-shards 2 against an
// environment running two Flux controller shards. A store created through the API
// on each controller shard gets its shard Kustomization (the publisher's) and its
// HelmRelease (render's) labelled for the same controller shard, and each becomes
// Ready, applied and installed by its own shard's controllers.
func TestFluxShardsThroughTheAPI(t *testing.T) {
	const k = render.FluxShards(2)
	env := testenv.StartT(t, testenv.Options{FluxShards: k})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := &bytes.Buffer{}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, []string{"--listen", "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0",
			"--data-dir", filepath.Join(t.TempDir(), "data"), "--fleet-url", env.FleetURL, "--kubeconfig", env.Kubeconfig,
			"--chart-repository", "storefleet", "--chart-versions", env.ChartRepoURL + "/index.yaml", "--shutdown-grace", "5s",
			"--flux-shards", "2"},
			func(string) string { return "" }, pw, out)
		pw.Close()
	}()
	defer func() {
		cancel()
		<-done
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

	// One store on each controller shard.
	names := map[string]string{} // controller shard key → store
	for i := 0; len(names) < 2; i++ {
		n := fmt.Sprintf("fsapi-%d", i)
		if key := k.Key(store.Shard(n)); names[key] == "" {
			names[key] = n
		}
	}
	for _, n := range names {
		if st, err := create(http.DefaultClient, api, n, n); err != nil || st != http.StatusAccepted {
			t.Fatalf("create %s: %d %v", n, st, err)
		}
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	helmReleases := schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
	for key, n := range names {
		ks := store.ShardObjectName(store.Shard(n))
		// Polled, not timed: ctx only keeps a broken run from hanging.
		for {
			u, err := dyn.Resource(kube.Kustomizations).Namespace("flux-system").Get(ctx, ks, metav1.GetOptions{})
			if err == nil {
				if got := u.GetLabels()[render.FluxShardLabel]; got != key {
					t.Fatalf("Kustomization %s (store %s) labelled %s=%q, want %q", ks, n, render.FluxShardLabel, got, key)
				}
				hr, err := dyn.Resource(helmReleases).Namespace("store-"+n).Get(ctx, n, metav1.GetOptions{})
				if err == nil {
					if got := hr.GetLabels()[render.FluxShardLabel]; got != key {
						t.Fatalf("HelmRelease %s labelled %s=%q, want %q", n, render.FluxShardLabel, got, key)
					}
					if ready(hr) {
						break
					}
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("store %s (controller shard %q) not Ready: %v\n%s", n, key, err, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func ready(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			return m["status"] == "True"
		}
	}
	return false
}
