// Package serve is `gitops-api serve`: it reads flags and environment, opens (or, by
// default, creates and seeds) the fleet repository, builds the store service and runs
// the HTTP API until it is told to stop. It only wires parts together; the parts are
// internal/api (HTTP), internal/fleet (lifecycle), internal/render and internal/gitrepo.
//
// It owns two promises of the process as a whole. It starts whatever the fleet
// remote does: without it, reads answer from the clone on disk (503 while there is
// none), writes answer 503 having done nothing, and /readyz says not ready until the
// remote answers (available.go); /readyz?verbose lists that check and each served
// cluster's connection and shard publisher (readyz.go). And no credential shows: every log line and
// start-up error passes through the fleet's gitrepo.Redactor (redact.go).
package serve
