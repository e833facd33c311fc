#!/usr/bin/env bash
# version: v1.9.6
# Flux kustomize-controller (the 2.9 line; v1.10 needs Go 1.27).
set -euo pipefail
go build -trimpath -o "$OUT/kustomize-controller" github.com/fluxcd/kustomize-controller
