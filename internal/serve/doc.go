// Package serve is `gitops-api serve`: it reads flags and environment, opens (or, by
// default, creates and seeds) the fleet repository, builds the store service and runs
// the HTTP API until it is told to stop. It only wires parts together; the parts are
// internal/api (HTTP), internal/fleet (lifecycle), internal/render and internal/gitrepo.
package serve
