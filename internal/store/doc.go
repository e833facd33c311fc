// Package store is Storefleet's domain: what a store is (Store, Engine, Plan, Settings), the plan table,
// the lifecycle phases status reports, the error codes every layer speaks, and validation.
//
// It imports nothing of the project and no SDK, so that render, the fleet writer, the HTTP API and status can
// all depend on it without depending on each other (the benbjohnson/wtf layout). Error codes are plain strings
// here; only the HTTP layer turns them into statuses.
package store
