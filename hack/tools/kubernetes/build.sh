#!/usr/bin/env bash
# version: v1.37.2
# kube-apiserver and kube-controller-manager from k8s.io/kubernetes. The staging
# modules are pinned by replace lines in go.mod (upstream's own go.mod points them at
# ./staging, which a module download does not have). The ldflags make the binaries
# report their real version instead of v0.0.0.
set -euo pipefail
ldflags="-X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
export CGO_ENABLED=0
go build -trimpath -o "$OUT/kube-apiserver" -ldflags "$ldflags" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -o "$OUT/kube-controller-manager" -ldflags "$ldflags" k8s.io/kubernetes/cmd/kube-controller-manager
