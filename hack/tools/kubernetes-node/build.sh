#!/usr/bin/env bash
# version: v1.37.2
# The node's Kubernetes programs — kubelet, kube-scheduler, kube-proxy — from the same
# k8s.io/kubernetes module and staging pins as hack/tools/kubernetes (the control
# plane), so node and API server are one release. A folder of their own, not extra
# lines in hack/tools/kubernetes/build.sh: that would change its hash and rebuild the
# API server on every machine for binaries only node tests use.
set -euo pipefail
ldflags="-X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
export CGO_ENABLED=0
for cmd in kubelet kube-scheduler kube-proxy; do
  go build -trimpath -o "$OUT/$cmd" -ldflags "$ldflags" "k8s.io/kubernetes/cmd/$cmd"
done
