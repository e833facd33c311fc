// Package kube is Storefleet's only client-go user in product code. It watches, for
// every store at once, the store HelmReleases and Namespaces (by the
// app.kubernetes.io/managed-by=storefleet label render puts on them), the shards' (4,096)
// ExternalArtifacts and Kustomizations in the Flux namespace (by the
// storefleet.io/shard label), and the Events in store namespaces, through shared
// informers whose transforms keep only what status needs (no managedFields, no spec
// beyond what status reads, no HelmRelease values, only the newest release of the
// history). It turns them into internal/status observations.
//
// It never blocks the API: informers start in the background, a /readyz probe tells
// status whether the cluster answers (every store is then "unknown" until it does
// again), and the informers' reflectors re-list and re-watch by themselves once the
// API server is back.
//
// It also publishes the shards' artifacts (PublishArtifact writes an
// ExternalArtifact's status.artifact, which is what makes kustomize-controller apply
// the shard; PublishedArtifact(s) read it back, PublishedArtifacts from the
// ExternalArtifacts informer's cache once it has listed, so the publisher's pass costs
// the API server nothing). It asks Flux for one thing more: a fetch of the fleet
// GitRepository (RequestSourceFetch) when a commit changed the shared chart sources,
// which reach the cluster through that repository; the rest of it (infrastructure,
// rarely changed) reconciles at its interval or through a Receiver on the Git host's
// webhook.
package kube
