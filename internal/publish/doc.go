// Package publish owns the shard publisher: it turns the fleet repository's shard
// trees (stores/<cluster>/<shard>/) into Flux ExternalArtifacts, one per shard, and
// serves their tarballs to kustomize-controller (docs/design.md, "How Flux applies
// the stores").
//
// Why it exists: one Kustomization over the whole fleet re-applies every store on
// every commit. With an artifact per shard, republished only when its Git tree
// changed, a commit costs Flux one shard (~2.4 stores at 10,000 with 4,096 shards) and a store does not
// wait for source-controller to clone the whole fleet.
//
// It talks to the fleet repository and the cluster through two small ports (Source,
// Cluster), implemented by internal/gitrepo and internal/kube; it imports neither.
package publish
