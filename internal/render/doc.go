// Package render turns a store into the Flux manifests of its fleet folder: the Namespace, the
// ServiceAccount and RoleBinding helm-controller impersonates, the plan's ResourceQuota, LimitRange and
// NetworkPolicies, the HelmRelease (and, for OCI chart sources, the OCIRepository) and the folder's
// kustomization.yaml.
//
// It is pure: no I/O, no clock, no randomness. Objects are typed (k8s.io/api, fluxcd/helm-controller/api,
// fluxcd/source-controller/api) and marshalled with sigs.k8s.io/yaml, so the same store and options always
// give the same bytes, and a store's settings can only ever become YAML string scalars, never structure.
package render
