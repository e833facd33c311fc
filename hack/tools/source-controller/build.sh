#!/usr/bin/env bash
# version: v1.9.6
# Flux source-controller (the 2.9 line; v1.10 needs Go 1.27).
set -euo pipefail
go build -trimpath -o "$OUT/source-controller" github.com/fluxcd/source-controller
