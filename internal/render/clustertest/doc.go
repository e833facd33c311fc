// Package clustertest checks render's output against a real kube-apiserver with the
// Flux CRDs (internal/testenv): every object a store renders to, in every state, must
// pass a server-side dry-run with fieldValidation=Strict. The offline schema check in
// internal/k8sschema covers the same ground without a server; this package is the
// ground truth it is measured against (Strict is what makes an unknown field an error
// instead of being dropped silently). It is its own package so render's unit tests
// stay pure and need no cluster.
package clustertest
