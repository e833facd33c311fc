package kube

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/storefleet/storefleet/internal/store"
)

// Shards is the cluster side of `gitops-api reshard`, run with the operator's
// credentials: it watches the shard publisher carry a move out and then removes
// the shards the move emptied, which gitops-api's own identity may not delete.
type Shards struct {
	dyn dynamic.Interface
	ns  string
}

// NewShards talks to the cluster of cfg, whose shard objects live in fluxNamespace.
func NewShards(cfg *rest.Config, fluxNamespace string) (*Shards, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Shards{dyn: dyn, ns: fluxNamespace}, nil
}

// Revisions reads the artifact revision of each shard's ExternalArtifact ("" when
// it has none).
func (s *Shards) Revisions(ctx context.Context, shards []string) (map[string]string, error) {
	out := map[string]string{}
	for _, shard := range shards {
		u, err := s.dyn.Resource(ExternalArtifacts).Namespace(s.ns).Get(ctx, store.ShardObjectName(shard), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			out[shard] = ""
			continue
		}
		if err != nil {
			return nil, err
		}
		out[shard], _, _ = unstructured.NestedString(u.Object, "status", "artifact", "revision")
	}
	return out, nil
}

// WaitMoved waits until every shard in before was published again (its artifact's
// revision is no longer the one before the move's push) and Flux applied that
// revision. It reports progress through progress (shards left) every few seconds.
func (s *Shards) WaitMoved(ctx context.Context, before map[string]string, progress func(left int)) error {
	left := map[string]bool{}
	for shard := range before {
		left[shard] = true
	}
	lastReport := time.Now()
	for len(left) > 0 {
		for shard := range left {
			a, err := s.dyn.Resource(ExternalArtifacts).Namespace(s.ns).Get(ctx, store.ShardObjectName(shard), metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			if err != nil {
				continue
			}
			rev, _, _ := unstructured.NestedString(a.Object, "status", "artifact", "revision")
			if rev == "" || rev == before[shard] {
				continue
			}
			k, err := s.dyn.Resource(Kustomizations).Namespace(s.ns).Get(ctx, store.ShardObjectName(shard), metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			if err != nil {
				continue
			}
			if applied, _, _ := unstructured.NestedString(k.Object, "status", "lastAppliedRevision"); applied == rev {
				delete(left, shard)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if progress != nil && time.Since(lastReport) > 5*time.Second {
			progress(len(left))
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d shards not yet published and applied since the move: %w", len(left), ctx.Err())
		case <-time.After(appliedPoll):
		}
	}
	return nil
}

// Remove deletes a shard's Kustomization, waits until it is gone (its finalizer
// prunes its inventory: empty once its empty artifact was applied), then deletes
// its ExternalArtifact. A shard already gone is no error.
func (s *Shards) Remove(ctx context.Context, shard string) error {
	name := store.ShardObjectName(shard)
	ks := s.dyn.Resource(Kustomizations).Namespace(s.ns)
	if err := ks.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Kustomization %s/%s: %w", s.ns, name, err)
	}
	for {
		_, err := ks.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Kustomization %s/%s not gone: %w", s.ns, name, ctx.Err())
		case <-time.After(appliedPoll):
		}
	}
	if err := s.dyn.Resource(ExternalArtifacts).Namespace(s.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete ExternalArtifact %s/%s: %w", s.ns, name, err)
	}
	return nil
}
