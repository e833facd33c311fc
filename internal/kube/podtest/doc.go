// Package podtest tests internal/kube's Pod-facing parts (the store logs adapter,
// the Pod watch behind a crash-looping store's failed phase) against real Pods:
// the test environment's worker node (internal/testenv, Options.Node) runs
// busybox containers that print known lines, crash, and finish. It holds tests
// only; it needs root and the node's Debian packages, and says so when skipped.
package podtest
