//go:build !unix

package gitrepo

import "os"

// Without flock a live writer's ref lock cannot be told from a dead one's: every lock
// found is treated like git's own, stale only once older than staleLockAge.
const flockWorks = false

func tryFlock(*os.File) (bool, error) { return true, nil }

func waitFlock(*os.File) error { return nil }
