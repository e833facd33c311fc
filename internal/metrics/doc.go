// Package metrics is Storefleet's Prometheus instrumentation: the one package that
// imports client_golang. The packages where the work happens (api, gitrepo,
// status, publish) declare small observer interfaces in their own terms — strings,
// ints and durations — and *Metrics satisfies them structurally, so none of them
// depends on Prometheus and this package imports nothing of the project. serve wires
// them together and serves Handler on the internal listener, never on the API's.
// What belongs to one served cluster (its connection, watch lag, shard publisher,
// publish queue, stores by phase) goes through that cluster's *Cluster and carries
// a cluster label, so one API serving several clusters shows each apart.
//
// Cardinality is bounded by construction: HTTP routes are chi's route patterns
// (/api/v1/stores/{name}, never a store's name), methods outside the standard set
// are "other", phases are the domain's fixed list, clusters are those the operator
// configured, and no label ever carries a store name, a subject or a tenant.
package metrics
