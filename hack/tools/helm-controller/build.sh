#!/usr/bin/env bash
# version: v1.6.4
# Flux helm-controller (the 2.9 line; it embeds Helm v4.2.4, as hack/tools/helm does).
set -euo pipefail
go build -trimpath -o "$OUT/helm-controller" github.com/fluxcd/helm-controller
