#!/usr/bin/env bash
# version: v1.15.0
# CoreDNS, the node's cluster DNS: it answers <service>.<namespace>.svc.cluster.local
# from the API server (its kubernetes plugin) for the Pods on the test node. Built
# from main.go here, which links only the plugins the node's Corefile uses: the
# module's own main links all of them (cloud providers' SDKs included) and took
# 355 s cold against this one's (docs/node.md, "Cold cost").
set -euo pipefail
CGO_ENABLED=0 go build -trimpath -o "$OUT/coredns" .
