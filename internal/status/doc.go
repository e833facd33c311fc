// Package status tells where a store really is: it combines what the fleet
// repository says a store should be (its lifecycle and last commit) with what the
// cluster reports (the fleet source's artifact, the Kustomization's last applied
// revision, the store's HelmRelease and Namespace) into a phase, a timestamp per
// step, a percentage, and Flux's own reason and message.
//
// The phase rules are pure functions over small structs (Compute); the Tracker
// keeps the per-store state, stamps steps as they complete, and fans changes out
// to subscribers (the API's Server-Sent Event streams). The Tracker knows nothing
// of client-go: internal/kube feeds it observations and performs the reconcile
// requests it asks for.
package status
