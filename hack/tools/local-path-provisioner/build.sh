#!/usr/bin/env bash
# version: v0.0.30
# Rancher's local-path-provisioner: binds the charts' PersistentVolumeClaims on the
# test node to folders under the node's data directory. It cannot grow a volume
# (docs/node.md, "Volumes and plan changes", says what a plan change does here).
set -euo pipefail
CGO_ENABLED=0 go build -trimpath -o "$OUT/local-path-provisioner" github.com/rancher/local-path-provisioner
