// Package chartindex implements the domain's store.Charts port: which versions of
// each engine's chart the chart source offers, so a store is never committed with
// a version Flux cannot fetch. It reads either a Helm chart repository's index.yaml
// (Index: over HTTP, or a file) or a folder of unpackaged charts (Dir: each
// <folder>/<chart>/Chart.yaml, such as this repository's charts/, which the local
// environment packages into the HelmRepository the stores install from). An OCI
// registry has no index to read; serve then wires no Charts at all, and versions
// are not checked.
//
// An engine's chart has the engine's name (render's charts/<engine>).
package chartindex
