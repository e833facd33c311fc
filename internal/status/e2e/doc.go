// Package e2e holds status' end-to-end tests: gitops-api (in process, as `serve`
// runs it) against the real test environment (internal/testenv), watching stores go
// from a request to ready, upgraded, failed, retained and deleted over its
// Server-Sent Event streams. The package's environment has no worker node (Pods stay
// Pending, Helm does not wait); TestShopsServeOnNode starts one of its own with a
// node, where the stores really run and serve. It has no non-test code.
package e2e
