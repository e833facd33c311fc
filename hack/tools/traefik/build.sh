#!/usr/bin/env bash
# version: v3.6.12
# Traefik, the test node's ingress controller: it serves the stores' Ingresses
# (the IngressClass the node makes the cluster default) on the node's address,
# port 80. v3.7 does not build from the module proxy (it replaces a module the
# proxy refuses); 3.6.12 does, with the replace lines in go.mod.
set -euo pipefail
CGO_ENABLED=0 go build -trimpath -o "$OUT/traefik" github.com/traefik/traefik/v3/cmd/traefik
