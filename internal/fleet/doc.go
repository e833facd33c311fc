// Package fleet orchestrates store operations: validate (internal/store), render the
// store's files (internal/render), and commit them to the fleet repository
// (internal/gitrepo). It owns what no single part owns: idempotency of client
// retries, refusing a second create while the first is still being committed,
// request tracking, dry runs, the two-phase delete/purge sequence, and the store
// index behind listing.
//
// It depends on its peers only through the small Renderer and Repo interfaces
// below, so the HTTP layer and its tests run against the real implementations
// while each part can change on its own.
package fleet
