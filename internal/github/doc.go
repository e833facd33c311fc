// Package github sends the changes the review policy names to a pull request on
// the fleet repository's GitHub project instead of straight to the fleet's branch,
// and follows the pull requests to their end. It is the only package that imports
// go-github (and ghinstallation, the GitHub App credentials built on the same
// go-github major).
//
// Writer decorates the direct writer behind store.Repository: a change the policy
// does not name is committed as before; one it names is committed by the Git writer
// onto a branch of its own (storefleet/<store>/<request-id>, store.Proposer) and a
// pull request is opened for it, whose body shows the exact file diff and who asked
// for what. A retry finds the same pull request again (GitHub's 422 "already
// exists" is an answer, not an error); any other change to a store with an open
// pull request is refused, naming it. The commit on the branch carries the same
// trailers as a direct commit, so a merge, a squash or a rebase keeps the store's
// history complete.
//
// Webhook deliveries are checked with X-Hub-Signature-256 only: go-github's
// ValidatePayload falls back to SHA-1 when that header is missing, so it is not
// used. A delivery is answered as soon as it is checked and queued, deduplicated on
// its X-GitHub-Delivery id, and processed in the background: a merged pull request
// makes the fleet fetched at once (its commit is then an outside commit like any
// other: committed … ready), a closed one marks its request rejected.
//
// GitHub down or rate-limiting is EUNAVAILABLE: nothing reached the fleet's branch,
// and the same Idempotency-Key resumes the request (the branch is pushed again, the
// pull request found or opened).
package github
