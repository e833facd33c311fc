#!/usr/bin/env bash
# version: v3.6.16
# etcd server (its module root is package main).
set -euo pipefail
CGO_ENABLED=0 go build -trimpath -o "$OUT/etcd" go.etcd.io/etcd/server/v3
