# Fault suite (internal/faults): the real gitops-api binary killed with SIGKILL under
# load, its data folder filled, its remote black-holed and refused. `make test` runs
# it with the package defaults (5 kill rounds); `make fault` runs all of it with 20.
# Figures: docs/reliability.md. The full-disk test mounts a tmpfs (root, as in CI).
.PHONY: fault

FAULT_KILL_ROUNDS ?= 20

## fault: the whole fault suite, 20 kill rounds; -v so every test's figures are printed.
fault:
	FAULT_KILL_ROUNDS=$(FAULT_KILL_ROUNDS) $(GO) test -count=1 -v -timeout 60m ./internal/faults/
