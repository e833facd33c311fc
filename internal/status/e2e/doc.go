// Package e2e holds status' end-to-end tests: gitops-api (in process, as `serve`
// runs it) against the real test environment (internal/testenv), watching stores go
// from a request to ready, upgraded, failed, retained and deleted over its
// Server-Sent Event streams. It has no non-test code.
package e2e
