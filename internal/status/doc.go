// Package status tells where a store really is: it combines what the fleet
// repository says a store should be (its lifecycle and last commit) with what the
// cluster reports (its shard's ExternalArtifact and Kustomization, the store's
// HelmRelease and Namespace) into a phase, a timestamp per step, a percentage, and
// Flux's own reason and message.
//
// The phase rules are pure functions over small structs (Compute); the Tracker
// keeps the per-store state, stamps steps as they complete, and fans changes out
// to subscribers (the API's Server-Sent Event streams). Whether a shard's artifact
// or Kustomization includes a store's commit is told by publish order (the shard
// publisher reports each publish), not by a walk of Git history. The Tracker knows
// nothing of client-go or Git: internal/kube feeds it observations, the shard
// publisher its publishes.
//
// The Purger acts on what the Tracker knows: once the cluster applied a purge's
// first step it commits the second through the lifecycle, so one request purges a
// store when a cluster is connected.
package status
