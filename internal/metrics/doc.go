// Package metrics is Storefleet's Prometheus instrumentation: the one package that
// imports client_golang. The packages where the work happens (api, gitrepo,
// status, publish) declare small observer interfaces in their own terms — strings,
// ints and durations — and *Metrics satisfies them structurally, so none of them
// depends on Prometheus and this package imports nothing of the project. serve wires
// them together and serves Handler on the internal listener, never on the API's.
//
// Cardinality is bounded by construction: HTTP routes are chi's route patterns
// (/api/v1/stores/{name}, never a store's name), methods outside the standard set
// are "other", phases are the domain's fixed list, and no label ever carries a
// store name, a subject or a tenant.
package metrics
