package kube

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

func getKustomization(t *testing.T, ns, name string) (*kustomizev1.Kustomization, map[string]any) {
	t.Helper()
	u, err := dynClient(t).Resource(Kustomizations).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get Kustomization %s/%s: %v", ns, name, err)
	}
	k := &kustomizev1.Kustomization{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, k); err != nil {
		t.Fatal(err)
	}
	return k, u.Object
}

// The publisher's first publish of a shard creates its Kustomization, after the
// artifact; a restarted process with another layout brings it to that layout.
func TestPublishArtifactAppliesShardKustomization(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "shardks")
	layout := render.DefaultShardLayout()
	layout.Namespace = ns
	calls := 0
	cfg := Config{Rest: apiConfig, FluxNamespace: ns, ShardKustomization: func(shard string) (*kustomizev1.Kustomization, error) {
		calls++
		return render.ShardKustomization(layout, shard)
	}}
	w, err := New(cfg, nopSink{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PublishArtifact(ctx, "5e1", testArtifact("4444444444444444444444444444444444444444")); err != nil {
		t.Fatal(err)
	}
	k, obj := getKustomization(t, ns, "stores-5e1")
	if k.Labels[store.ShardLabel] != "5e1" || k.Spec.SourceRef.Kind != "ExternalArtifact" || k.Spec.SourceRef.Name != "stores-5e1" ||
		k.Spec.Interval.Duration != time.Hour || !k.Spec.Prune || len(k.Spec.DependsOn) != 1 {
		t.Fatalf("applied Kustomization: %+v", k)
	}
	managers := []string{}
	for _, f := range k.ManagedFields {
		managers = append(managers, f.Manager+"/"+string(f.Operation))
	}
	if strings.Join(managers, ",") != FieldManager+"/Apply" {
		t.Errorf("managed by %v, want only %s by server-side apply", managers, FieldManager)
	}
	// The CRD defaults observedGeneration; anything else would be the publisher's.
	if st, _ := obj["status"].(map[string]any); len(st) > 1 || (len(st) == 1 && st["observedGeneration"] == nil) {
		t.Errorf("the publisher wrote status: %v", st)
	}
	// Later publishes of the shard leave the Kustomization alone.
	if err := w.PublishArtifact(ctx, "5e1", testArtifact("5555555555555555555555555555555555555555")); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("ShardKustomization called %d times for two publishes of one shard", calls)
	}
	again, _ := getKustomization(t, ns, "stores-5e1")
	if again.Generation != k.Generation {
		t.Errorf("generation %d → %d on a republish", k.Generation, again.Generation)
	}

	// A new process with another drift interval and a decryption secret.
	layout.Interval = metav1.Duration{Duration: 2 * time.Hour}
	layout.DecryptionSecret = "sops-age"
	w2, err := New(cfg, nopSink{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.PublishArtifact(ctx, "5e1", testArtifact("6666666666666666666666666666666666666666")); err != nil {
		t.Fatal(err)
	}
	k2, _ := getKustomization(t, ns, "stores-5e1")
	if k2.Spec.Interval.Duration != 2*time.Hour || k2.Spec.Decryption == nil || k2.Spec.Decryption.SecretRef.Name != "sops-age" {
		t.Errorf("after a restart with another layout: interval %v decryption %+v", k2.Spec.Interval, k2.Spec.Decryption)
	}
}

// A template that names another object is refused before anything is written.
func TestPublishArtifactRefusesForeignKustomization(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "shardksbad")
	w, err := New(Config{Rest: apiConfig, FluxNamespace: ns, ShardKustomization: func(shard string) (*kustomizev1.Kustomization, error) {
		return render.ShardKustomization(render.DefaultShardLayout(), shard) // flux-system, not ns
	}}, nopSink{})
	if err != nil {
		t.Fatal(err)
	}
	err = w.PublishArtifact(ctx, "5e2", testArtifact("7777777777777777777777777777777777777777"))
	if err == nil || !strings.Contains(err.Error(), "flux-system/stores-5e2") {
		t.Fatalf("PublishArtifact = %v, want a refusal naming the foreign namespace", err)
	}
	list, err := dynClient(t).Resource(Kustomizations).Namespace("flux-system").List(ctx, metav1.ListOptions{})
	if err == nil && len(list.Items) > 0 {
		t.Errorf("a Kustomization was written to flux-system: %d", len(list.Items))
	}
}

// API server warnings reach the Watcher's log (debug), not the process' stderr.
func TestWarningsGoToTheLog(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "shardkswarn")
	layout := render.DefaultShardLayout()
	layout.Namespace = ns
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := New(Config{Rest: apiConfig, FluxNamespace: ns, Log: log, ShardKustomization: func(shard string) (*kustomizev1.Kustomization, error) {
		return render.ShardKustomization(layout, shard)
	}}, nopSink{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PublishArtifact(ctx, "5e3", testArtifact("8888888888888888888888888888888888888888")); err != nil {
		t.Fatal(err)
	}
	// The API server warns that finalizers.fluxcd.io is not domain-qualified with a path.
	if got := buf.String(); !strings.Contains(got, "kube-apiserver warning") || !strings.Contains(got, "finalizers.fluxcd.io") {
		t.Errorf("no warning about Flux's finalizer in the log:\n%s", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
