#!/usr/bin/env bash
# version: v4.2.4
# Helm v4 from its Go module: the line helm-controller v1.6.4 embeds, so lint and
# template see what Flux will install.
set -euo pipefail
go build -trimpath -o "$OUT/helm" \
  -ldflags "-X helm.sh/helm/v4/internal/version.version=v4.2.4" \
  helm.sh/helm/v4/cmd/helm
