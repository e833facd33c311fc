package kube

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/storefleet/storefleet/internal/store"
)

// appliedPoll is how often WaitApplied reads the Kustomization: a move waits for
// a few waves of shards, each applied within seconds, so a read every quarter
// second costs the API server little and the move little time.
const appliedPoll = 250 * time.Millisecond

// WaitApplied waits until the shard's Kustomization has applied revision
// (status.lastAppliedRevision), for ctx at most. The shard publisher calls it
// between the waves of a move (internal/publish, move.go): a shard that loses
// stores is published only once the shards that take them in applied them, so its
// prune finds them relabelled and leaves them. It reads the object itself rather
// than the informer's cache, which may lag behind by the time a wave takes.
func (w *Watcher) WaitApplied(ctx context.Context, shard, revision string) error {
	name := store.ShardObjectName(shard)
	ri := w.dyn.Resource(Kustomizations).Namespace(w.cfg.FluxNamespace)
	t := time.NewTicker(appliedPoll)
	defer t.Stop()
	last := "no Kustomization yet"
	for {
		u, err := ri.Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			got, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
			if got == revision {
				return nil
			}
			last = fmt.Sprintf("lastAppliedRevision %q", got)
		case !apierrors.IsNotFound(err):
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Kustomization %s/%s has not applied %s (%s): %w", w.cfg.FluxNamespace, name, revision, last, ctx.Err())
		case <-t.C:
		}
	}
}
