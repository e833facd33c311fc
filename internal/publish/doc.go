// Package publish owns the shard publisher: it turns the fleet repository's shard
// trees (stores/<cluster>/<shard>/) into Flux ExternalArtifacts, one per shard, and
// serves their tarballs to kustomize-controller (docs/design.md, "How Flux applies
// the stores" and "Serving the artifacts").
//
// Why it exists: one Kustomization over the whole fleet re-applies every store on
// every commit. With an artifact per shard, republished only when its Git tree
// changed, a commit costs Flux one shard (~2.4 stores at 10,000 with 4,096 shards) and a store does not
// wait for source-controller to clone the whole fleet.
//
// It also serves the tarballs (Handler, on gitops-api's artifact listener), on every
// replica whether or not it publishes: an artifact's URL names the shard, the commit
// it was built at and its SHA-256, so a replica that lacks it rebuilds it from its own
// clone and serves it only once the bytes match. Its data folder is a cache.
//
// It talks to the fleet repository and the cluster through two small ports (Source,
// Cluster), implemented by internal/gitrepo and internal/kube; it imports neither.
package publish
