// Package k8sschema validates Kubernetes objects offline against the real schemas: the Kubernetes OpenAPI v3
// spec shipped in the k8s.io/kubernetes module (api/openapi-spec/v3, v1.36.x, matching k8s.io/api v0.36.x)
// and the Flux CRDs from the Flux controller modules (config/crd/bases).
//
// It exists so that tests catch a wrong field before anything reaches a cluster: render checks every object
// it writes, and the charts check their `helm template` output. Unknown fields are errors (the API server
// drops them silently unless asked for fieldValidation=Strict), required fields, types, enums and patterns
// are checked. What the OpenAPI schemas do not express is not checked: semantic validation done in API
// server code (quantity syntax, label value syntax, …) and CEL rules of CRDs (x-kubernetes-validations).
//
// The schema files are read from the Go module cache; modules missing there are fetched with
// `go mod download` (through the Go module proxy), so the first use on a fresh machine needs it.
//
//	if err := k8sschema.Validate(yamlDocs); err != nil { … } // lists every problem
package k8sschema
