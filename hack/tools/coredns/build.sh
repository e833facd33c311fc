#!/usr/bin/env bash
# version: v1.15.0
# CoreDNS, the node's cluster DNS: it answers <service>.<namespace>.svc.cluster.local
# from the API server (its kubernetes plugin) for the Pods on the test node. Its
# module root is package main with the default plugin set compiled in.
set -euo pipefail
CGO_ENABLED=0 go build -trimpath -o "$OUT/coredns" github.com/coredns/coredns
