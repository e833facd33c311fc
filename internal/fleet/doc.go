// Package fleet is the store lifecycle: the use cases behind store.Service. It
// validates a request (internal/store), renders the store's files through the
// domain's Renderer port and commits them through its Repository port. It owns what
// no single part owns: idempotency of client retries, refusing a second create while
// the first is still being committed, the request log, dry runs and their diffs,
// the two-phase delete/purge sequence, the store index behind listing, and the write
// deadline: a write the repository could not decide in time is answered pending,
// kept pending in the request log (across restarts), and settled from
// Repository.FindRequest when asked about.
//
// It imports internal/store and no package that wraps an SDK: the Git writer
// (internal/gitrepo) and the renderer (internal/render) are adapters that serve
// wires in, so the HTTP layer and status link neither go-git nor client-go
// (TestDependencies, docs/design.md).
package fleet
