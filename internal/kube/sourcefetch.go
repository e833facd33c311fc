package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// GitRepositories is the fleet source's resource: the one Flux source gitops-api
// asks for a fetch (RequestSourceFetch).
var GitRepositories = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}

// ReconcileRequestAnnotation is what `flux reconcile` sets: a Flux controller
// reconciles an object whose value of it changed, whatever its interval.
const ReconcileRequestAnnotation = "reconcile.fluxcd.io/requestedAt"

// RequestSourceFetch asks source-controller to fetch GitRepository
// <FluxNamespace>/<name> now, by setting its reconcile request annotation with a
// merge patch that touches nothing else (the chart's admission policy lets
// gitops-api change no other field of a Flux object, and RBAC lets it patch this one
// GitRepository only). The shared chart sources come to the cluster through that
// repository, not through the shard artifacts, so the first store of a new version
// would otherwise wait for its interval.
func (w *Watcher) RequestSourceFetch(ctx context.Context, name string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		ReconcileRequestAnnotation: time.Now().UTC().Format(time.RFC3339Nano),
	}}})
	if err != nil {
		return err
	}
	if _, err := w.dyn.Resource(GitRepositories).Namespace(w.cfg.FluxNamespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("request a fetch of GitRepository %s/%s: %w", w.cfg.FluxNamespace, name, err)
	}
	return nil
}
