// Package kube is Storefleet's only client-go user in product code. It watches, for
// every store at once, the store HelmReleases and Namespaces (by the
// app.kubernetes.io/managed-by=storefleet label render puts on them), the fleet's
// GitRepository and the stores' Kustomization (by name), and the Events in store
// namespaces, through shared informers whose transforms keep only what status needs
// (no managedFields, no HelmRelease values, only the newest release of the history).
// It turns them into internal/status observations.
//
// It never blocks the API: informers start in the background, a /readyz probe tells
// status whether the cluster answers (every store is then "unknown" until it does
// again), and the informers' reflectors re-list and re-watch by themselves once the
// API server is back.
//
// It also performs the reconcile requests status asks for after a push: the
// reconcile.fluxcd.io/requestedAt annotation `flux reconcile` sets, on the fleet
// GitRepository and then on the Kustomization, or a POST to a notification-controller
// Receiver where one is configured.
package kube
