#!/usr/bin/env bash
# version: 1
# ref: localhost/storefleet/pause:1
# The Pod sandbox image (containerd's sandbox_image on the test node): one static Go
# program that holds the Pod's namespaces open until it is told to stop.
set -euo pipefail
CGO_ENABLED=0 go build -trimpath -o "$ROOTFS/pause" .
echo '{"Entrypoint":["/pause"]}' > "$CONFIG"
