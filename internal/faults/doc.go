// Package faults holds the fault suite and nothing else: it builds the real gitops-api
// binary once and runs it as processes against real fleet repositories (the embedded
// one, and a remote served by git http-backend on loopback behind a TCP proxy of the
// suite's own that can black-hole or refuse connections), then kills them with
// SIGKILL, fills their disk and cuts their remote, and checks what the API promised:
// no acknowledged request lost, none committed twice, none landed after a failure
// answer, every answer within the write deadline, and writes working again by
// themselves. Each test logs its figures; docs/reliability.md keeps them.
//
// Parameters come from the environment so `make fault` can run the long version:
// FAULT_KILL_ROUNDS (default 5), FAULT_WRITERS (20), FAULT_WRITE_TIMEOUT (3s),
// FAULT_RESTART_BOUND (1m, the liveness bound) and FAULT_SKIP_TMPFS.
package faults
