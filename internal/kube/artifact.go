package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	fluxmeta "github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/store"
)

// Artifact is the publisher's Artifact: the Watcher is its Cluster port as it is.
type Artifact = publish.Artifact

func validateArtifact(a Artifact) error {
	for _, f := range []struct{ name, v string }{{"url", a.URL}, {"path", a.Path}, {"revision", a.Revision}, {"digest", a.Digest}} {
		if f.v == "" {
			return fmt.Errorf("artifact %s is empty (the ExternalArtifact schema requires it)", f.name)
		}
	}
	if a.Size < 0 {
		return fmt.Errorf("artifact size %d is negative", a.Size)
	}
	return nil
}

// PublishArtifact makes ExternalArtifact <FluxNamespace>/stores-<shard> point at a:
// it creates the object (labelled with its shard) when it is missing, then writes
// status.artifact and a Ready=True condition through the status subresource, which
// is what kustomize-controller watches. It needs no informer (it works before
// Start) and retries a bounded number of times when the object changed under it.
// Then, once per process and shard, it applies the shard's Kustomization
// (Config.ShardKustomization) after the artifact, so the Kustomization finds it at
// its first reconcile instead of waiting a retry interval.
func (w *Watcher) PublishArtifact(ctx context.Context, shard string, a Artifact) error {
	if !store.ValidShard(shard) {
		return fmt.Errorf("publish artifact: shard %q is not three lowercase hex characters", shard)
	}
	if err := validateArtifact(a); err != nil {
		return fmt.Errorf("publish artifact of shard %s: %w", shard, err)
	}
	if a.LastUpdateTime.IsZero() {
		a.LastUpdateTime = time.Now()
	}
	name := store.ShardObjectName(shard)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ea, err := w.ensureArtifactObject(ctx, shard)
		if err != nil {
			return err
		}
		size := a.Size
		ea.Status.Artifact = &fluxmeta.Artifact{
			URL: a.URL, Path: a.Path, Revision: a.Revision, Digest: a.Digest, Size: &size,
			LastUpdateTime: metav1.NewTime(a.LastUpdateTime),
		}
		// SetStatusCondition keeps lastTransitionTime while the status stays the same.
		apimeta.SetStatusCondition(&ea.Status.Conditions, metav1.Condition{
			Type: fluxmeta.ReadyCondition, Status: metav1.ConditionTrue, Reason: fluxmeta.SucceededReason,
			Message:            fmt.Sprintf("stored artifact for revision '%s'", a.Revision),
			ObservedGeneration: ea.Generation,
		})
		u, err := toUnstructured(ea)
		if err != nil {
			return err
		}
		_, err = w.dyn.Resource(ExternalArtifacts).Namespace(w.cfg.FluxNamespace).UpdateStatus(ctx, u, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("publish artifact %s/%s: %w", w.cfg.FluxNamespace, name, err)
	}
	return w.ensureShardKustomization(ctx, shard)
}

// FieldManager is the server-side apply field manager of the shard Kustomizations.
const FieldManager = "storefleet-publisher"

// ensureShardKustomization server-side applies the shard's Kustomization the first
// time this process publishes the shard: it creates a missing one and, after a
// restart with another layout, brings it to the new layout. Later publishes skip
// it; the artifact's new revision is what makes Flux apply the shard.
func (w *Watcher) ensureShardKustomization(ctx context.Context, shard string) error {
	if w.cfg.ShardKustomization == nil {
		return nil
	}
	w.ksMu.Lock()
	done := w.ksDone[shard]
	w.ksMu.Unlock()
	if done {
		return nil
	}
	k, err := w.cfg.ShardKustomization(shard)
	if err != nil {
		return fmt.Errorf("shard %s: %w", shard, err)
	}
	name := store.ShardObjectName(shard)
	if k.Name != name || k.Namespace != w.cfg.FluxNamespace || k.Labels[store.ShardLabel] != shard {
		return fmt.Errorf("shard %s: Kustomization %s/%s labelled %q is not %s/%s labelled %s", shard,
			k.Namespace, k.Name, k.Labels[store.ShardLabel], w.cfg.FluxNamespace, name, shard)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(k)
	if err != nil {
		return fmt.Errorf("encode Kustomization %s: %w", name, err)
	}
	// An apply owns every field it sends: leave the server's fields alone.
	unstructured.RemoveNestedField(m, "status")
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode Kustomization %s: %w", name, err)
	}
	force := true
	_, err = w.dyn.Resource(Kustomizations).Namespace(w.cfg.FluxNamespace).Patch(ctx, name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if err != nil {
		return fmt.Errorf("apply Kustomization %s/%s: %w", w.cfg.FluxNamespace, name, err)
	}
	w.ksMu.Lock()
	w.ksDone[shard] = true
	w.ksMu.Unlock()
	return nil
}

// ensureArtifactObject reads the shard's ExternalArtifact, creating it (or putting
// its shard label back) as needed.
func (w *Watcher) ensureArtifactObject(ctx context.Context, shard string) (*sourcev1.ExternalArtifact, error) {
	ri := w.dyn.Resource(ExternalArtifacts).Namespace(w.cfg.FluxNamespace)
	name := store.ShardObjectName(shard)
	ea, err := w.getArtifactObject(ctx, name)
	switch {
	case apierrors.IsNotFound(err):
		ea = &sourcev1.ExternalArtifact{
			TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.ExternalArtifactKind},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.cfg.FluxNamespace, Labels: map[string]string{store.ShardLabel: shard}},
		}
		u, err := toUnstructured(ea)
		if err != nil {
			return nil, err
		}
		created, err := ri.Create(ctx, u, metav1.CreateOptions{})
		if err == nil {
			// A shard new to the cluster, or one removed after a move emptied it
			// (`gitops-api reshard`) and filled again: its Kustomization is applied
			// again even if this process applied it before.
			w.ksMu.Lock()
			delete(w.ksDone, shard)
			w.ksMu.Unlock()
		}
		if apierrors.IsAlreadyExists(err) {
			// Created meanwhile: a conflict, so RetryOnConflict reads it again.
			return nil, apierrors.NewConflict(ExternalArtifacts.GroupResource(), name, err)
		}
		if err != nil {
			return nil, err
		}
		return fromUnstructured(created)
	case err != nil:
		return nil, err
	}
	if ea.Labels[store.ShardLabel] == shard {
		return ea, nil
	}
	// Without its label the watcher would not see the shard. gitops-api may not
	// change labels of Flux objects (the platform chart's admission policy), so an
	// object someone else made or relabelled is an operator's to fix.
	return nil, fmt.Errorf("ExternalArtifact %s/%s exists without label %s=%s: delete it and gitops-api recreates it",
		w.cfg.FluxNamespace, name, store.ShardLabel, shard)
}

func (w *Watcher) getArtifactObject(ctx context.Context, name string) (*sourcev1.ExternalArtifact, error) {
	u, err := w.dyn.Resource(ExternalArtifacts).Namespace(w.cfg.FluxNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return fromUnstructured(u)
}

// PublishedArtifact reads back what a shard's ExternalArtifact points at, so that
// a restarted publisher can adopt an artifact it would build again instead of
// republishing it. It returns (nil, nil) when the object or its artifact does not
// exist.
func (w *Watcher) PublishedArtifact(ctx context.Context, shard string) (*Artifact, error) {
	if !store.ValidShard(shard) {
		return nil, fmt.Errorf("published artifact: shard %q is not three lowercase hex characters", shard)
	}
	ea, err := w.getArtifactObject(ctx, store.ShardObjectName(shard))
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read artifact %s/%s: %w", w.cfg.FluxNamespace, store.ShardObjectName(shard), err)
	}
	return artifactOf(ea), nil
}

// PublishedArtifacts reads every shard's published artifact, keyed by shard; shards
// without an object or an artifact are absent. Once the watcher's ExternalArtifacts
// informer has listed, it answers from that cache and costs the API server nothing:
// the publisher asks on every pass (every 30 s), and a LIST of 4,096 artifacts is
// megabytes. Before (the publisher's first pass runs before Start) it makes one LIST
// request (256 reads one by one would take seconds at the client's rate limit).
func (w *Watcher) PublishedArtifacts(ctx context.Context) (map[string]Artifact, error) {
	w.mu.Lock()
	inf := w.artifacts
	w.mu.Unlock()
	if inf != nil && inf.HasSynced() {
		return artifactsOf(inf.GetStore().List())
	}
	list, err := w.dyn.Resource(ExternalArtifacts).Namespace(w.cfg.FluxNamespace).List(ctx, metav1.ListOptions{LabelSelector: store.ShardLabel})
	if err != nil {
		return nil, fmt.Errorf("list artifacts in %s: %w", w.cfg.FluxNamespace, err)
	}
	objs := make([]any, len(list.Items))
	for i := range list.Items {
		objs[i] = &list.Items[i]
	}
	return artifactsOf(objs)
}

// artifactsOf reads the artifacts of the shards' ExternalArtifacts among objs. It
// only reads them: cached objects are shared with the informer.
func artifactsOf(objs []any) (map[string]Artifact, error) {
	out := map[string]Artifact{}
	for _, o := range objs {
		u, ok := asUnstructured(o)
		if !ok {
			continue
		}
		shard, ok := shardOf(u)
		if !ok || u.GetName() != store.ShardObjectName(shard) {
			continue
		}
		a, err := readArtifact(u)
		if err != nil {
			return nil, fmt.Errorf("ExternalArtifact %s: %w", u.GetName(), err)
		}
		if a != nil {
			out[shard] = *a
		}
	}
	return out, nil
}

// readArtifact is artifactOf read straight from the object's fields: a pass reads
// every shard's, and converting 4,096 whole objects to typed ones cost most of it.
func readArtifact(u *unstructured.Unstructured) (*Artifact, error) {
	m, ok, err := unstructured.NestedMap(u.Object, "status", "artifact")
	if err != nil || !ok {
		return nil, err
	}
	a := &Artifact{}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"url", &a.URL}, {"path", &a.Path}, {"revision", &a.Revision}, {"digest", &a.Digest}} {
		if v, ok := m[f.name]; ok {
			if *f.dst, ok = v.(string); !ok {
				return nil, fmt.Errorf("status.artifact.%s is %T, not a string", f.name, v)
			}
		}
	}
	switch v := m["size"].(type) {
	case nil:
	case int64:
		a.Size = v
	case float64:
		a.Size = int64(v)
	default:
		return nil, fmt.Errorf("status.artifact.size is %T, not a number", v)
	}
	if v, ok := m["lastUpdateTime"].(string); ok && v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, fmt.Errorf("status.artifact.lastUpdateTime: %w", err)
		}
		a.LastUpdateTime = t.UTC()
	}
	return a, nil
}

// trimArtifact keeps, of a shard's ExternalArtifact, what trimShard keeps for status
// and the rest of status.artifact, which PublishedArtifacts reads back from the
// cache (a few hundred bytes a shard).
func trimArtifact(o any) (any, error) {
	src, ok := o.(*unstructured.Unstructured)
	if !ok {
		return o, nil
	}
	t, err := trimShard(o)
	if err != nil {
		return nil, err
	}
	out := t.(*unstructured.Unstructured)
	for _, f := range []string{"url", "path", "digest", "size", "lastUpdateTime"} {
		pick(out.Object, src.Object, "status", "artifact", f)
	}
	return out, nil
}

func artifactOf(ea *sourcev1.ExternalArtifact) *Artifact {
	sa := ea.Status.Artifact
	if sa == nil {
		return nil
	}
	a := &Artifact{URL: sa.URL, Path: sa.Path, Revision: sa.Revision, Digest: sa.Digest, LastUpdateTime: sa.LastUpdateTime.UTC()}
	if sa.Size != nil {
		a.Size = *sa.Size
	}
	return a
}

func toUnstructured(ea *sourcev1.ExternalArtifact) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ea)
	if err != nil {
		return nil, fmt.Errorf("encode ExternalArtifact %s: %w", ea.Name, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

func fromUnstructured(u *unstructured.Unstructured) (*sourcev1.ExternalArtifact, error) {
	if u == nil {
		return nil, errors.New("no ExternalArtifact")
	}
	ea := &sourcev1.ExternalArtifact{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, ea); err != nil {
		return nil, fmt.Errorf("decode ExternalArtifact %s: %w", u.GetName(), err)
	}
	return ea, nil
}
