package render

import (
	"errors"
	"fmt"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	meta "github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/storefleet/storefleet/internal/store"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DependencyAppliedOnce is the readiness a shard asks of its dependencies: applied
// at least once. Flux's default (Ready now) would hold every shard back while the
// dependency reconciles, which it does on every new fleet commit: with 1,000 stores
// that put a store's request → ready from 3.6 s to 7.7 s (p50), see docs/benchmarks.md.
const DependencyAppliedOnce = "has(dep.status.lastAppliedRevision) && dep.status.lastAppliedRevision != ''"

// ShardServiceAccount is the ServiceAccount (in the shard Kustomizations' namespace)
// kustomize-controller impersonates to apply a shard. Without it the controller applies
// as itself, cluster-admin in a standard Flux install: whoever controls gitops-api or
// lands a commit in the fleet could create a ClusterRoleBinding. Its RBAC and admission
// policy (clusters/*/shard-identity.yaml) allow exactly what a store's folder holds. It
// is not a layout choice: the platform chart's admission policy requires this name.
const ShardServiceAccount = "storefleet-shard"

// ShardLayout is what a cluster chooses about its shard Kustomizations; gitops-api
// takes it from its flags (the platform chart's values).
type ShardLayout struct {
	// Namespace holds the shard Kustomizations and ExternalArtifacts (flux-system).
	Namespace string
	// Interval is how often Flux re-applies an unchanged shard to undo drift. A
	// commit does not wait for it (a new artifact triggers the apply), so it is
	// long: a full pass costs the whole fleet's objects, ~20 minutes of
	// kustomize-controller's 4 workers at 10,000 stores on 2 cores, and a pass that
	// does not finish within the interval starves every commit (docs/design.md).
	Interval metav1.Duration
	// RetryInterval is how soon a failed apply is retried.
	RetryInterval metav1.Duration
	// Timeout bounds one apply.
	Timeout metav1.Duration
	// DependsOn names Kustomizations (in Namespace) every shard waits for until they
	// have been applied once (DependencyAppliedOnce).
	DependsOn []string
	// DecryptionSecret, when set, decrypts SOPS-encrypted files with the age key in
	// that Secret (in Namespace).
	DecryptionSecret string
	// FluxShards is the cluster's number of Flux controller shards; with more than
	// one, a shard Kustomization carries its controller shard's label (FluxShards.Key),
	// as do the HelmReleases it applies (Options.FluxShards, the same setting).
	FluxShards FluxShards
}

// DefaultShardLayout is the layout of a cluster that chose nothing else: the test
// environment's and `make dev`'s.
func DefaultShardLayout() ShardLayout {
	return ShardLayout{
		Namespace:     "flux-system",
		Interval:      metav1.Duration{Duration: time.Hour},
		RetryInterval: metav1.Duration{Duration: 30 * time.Second},
		Timeout:       metav1.Duration{Duration: 2 * time.Minute},
		DependsOn:     []string{"infrastructure"},
	}
}

// Validate reports a layout Flux would refuse or that would defeat sharding.
func (l ShardLayout) Validate() error {
	var errs []error
	if l.Namespace == "" {
		errs = append(errs, errors.New("shard layout: namespace is empty"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", l.Interval.Duration}, {"retry interval", l.RetryInterval.Duration}, {"timeout", l.Timeout.Duration}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("shard layout: %s must be positive, not %s", d.name, d.v))
		}
	}
	for _, d := range l.DependsOn {
		if d == "" {
			errs = append(errs, errors.New("shard layout: an empty dependsOn name"))
		}
	}
	if err := l.FluxShards.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("shard layout: %w", err))
	}
	return errors.Join(errs...)
}

// ShardKustomization is the Flux Kustomization of one shard (docs/design.md, "How
// Flux applies the stores"): it applies ExternalArtifact stores-<shard>, a tarball of
// stores/<cluster>/<shard>/ that gitops-api's shard publisher builds and republishes
// only when that tree changed, so a commit re-applies its shard's few stores, never
// the fleet. The publisher creates it next to the artifact, the first time the shard
// holds a store: 4,096 objects that mostly wait for an artifact would cost Flux and
// the API server more than the stores. prune removes what left Git (store Namespaces
// opt out, so data stays); wait is off because a store's readiness is its own
// HelmRelease's, and one slow store must not hold back the others of its shard.
func ShardKustomization(l ShardLayout, shard string) (*kustomizev1.Kustomization, error) {
	if !store.ValidShard(shard) {
		return nil, fmt.Errorf("shard %q is not %d lowercase hex characters", shard, store.ShardDigits)
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	retry, timeout := l.RetryInterval, l.Timeout
	k := &kustomizev1.Kustomization{
		TypeMeta: metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
		ObjectMeta: metav1.ObjectMeta{
			Name: store.ShardObjectName(shard), Namespace: l.Namespace,
			Labels: map[string]string{store.ShardLabel: shard},
			// kustomize-controller's first reconcile of a Kustomization without its
			// finalizer only adds it and requeues, which Flux's rate limiter delays by
			// 750 ms: a shard's first store waited that long before its apply.
			Finalizers: []string{kustomizev1.KustomizationFinalizer},
		},
		Spec: kustomizev1.KustomizationSpec{
			Interval:      l.Interval,
			RetryInterval: &retry,
			Timeout:       &timeout,
			Prune:         true,
			Wait:          false,
			SourceRef:     kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.ExternalArtifactKind, Name: store.ShardObjectName(shard)},
			Path:          "./",
			// kustomize-controller impersonates ServiceAccounts of the Kustomization's own
			// namespace, so the name alone is the whole reference.
			ServiceAccountName: ShardServiceAccount,
		},
	}
	// A shard on another controller shard than its dependencies still sees them:
	// kustomize-controller reads a dependency past its label-filtered cache.
	labelFluxShard(k.Labels, l.FluxShards, shard)
	for _, d := range l.DependsOn {
		k.Spec.DependsOn = append(k.Spec.DependsOn, kustomizev1.DependencyReference{Name: d, ReadyExpr: DependencyAppliedOnce})
	}
	if l.DecryptionSecret != "" {
		k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: l.DecryptionSecret}}
	}
	return k, nil
}

// ShardKustomizationYAML is ShardKustomization as a manifest (for a reader of the
// layout, e.g. docs and `gitops-api` tests).
func ShardKustomizationYAML(l ShardLayout, shard string) ([]byte, error) {
	k, err := ShardKustomization(l, shard)
	if err != nil {
		return nil, err
	}
	return encode(k)
}
