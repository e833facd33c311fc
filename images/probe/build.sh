#!/usr/bin/env bash
# version: 1
# ref: localhost/storefleet/probe:1
# The node test's workload: one static Go program (see main.go) in an otherwise
# empty image.
set -euo pipefail
CGO_ENABLED=0 go build -trimpath -o "$ROOTFS/probe" .
echo '{"Entrypoint":["/probe"]}' > "$CONFIG"
