// Package testenv runs Storefleet's real control plane on loopback, without Docker:
// etcd, kube-apiserver and kube-controller-manager as processes, the Flux CRDs, and
// Flux's source-, kustomize- and helm-controller out of cluster, plus the fleet Git
// repository (served by internal/githttp), the project's charts as a Helm chart
// repository and the shard artifacts it publishes itself (see below). Tests get it
// from TestMain (Main) or per test (StartT); people get it from
// cmd/storefleet-testenv: `make testenv` until `make testenv-down`, or `make dev`
// with gitops-api against it, until Ctrl-C.
//
// It owns the binaries' pins (hack/tools/<name>, built once per machine by
// hack/tools/install.sh, which Start calls so a plain `go test` works), the PKI and
// admin kubeconfig (<Dir>/kubeconfig), the component logs (<Dir>/logs/<name>.log),
// and the process lifecycle: every component runs in its own process group with a
// parent-death signal, and Stop takes them down in reverse order (controllers,
// kube-controller-manager, kube-apiserver, etcd). Every port is a free loopback
// port, so several environments run side by side.
//
// Flux applies the stores shard by shard (docs/design.md, "How Flux applies the
// stores"), from ExternalArtifacts and Kustomizations stores-<shard> that are not in
// Git: gitops-api's shard publisher creates them. Without a gitops-api, Reconcile
// does its work with the git CLI (publishShards): it publishes each shard of
// stores/local/<shard>/ (three hex characters, store.Shard: 4,096 shards, 000 to
// fff) whose tree changed and, the first time a shard holds a store, applies its
// Kustomization (render.ShardKustomization, render.DefaultShardLayout) as the
// publisher does. A shard that never held a store has neither object. With
// Options.FluxShards > 1 the Flux controllers are sharded as clusters/production/flux-shards
// shards a cluster: kustomize-controller-shard<i> and helm-controller-shard<i> see
// only objects labelled sharding.fluxcd.io/key=shard<i>, the main ones only
// unlabelled objects, and the shard Kustomizations are labelled for it (Env.ShardLayout).
// Each kustomize-controller and helm-controller runs with --concurrent from
// Options.KustomizeConcurrent / Options.HelmConcurrent, else
// $STOREFLEET_FLUX_KUSTOMIZE_CONCURRENT / $STOREFLEET_FLUX_HELM_CONCURRENT, else
// DefaultKustomizeConcurrent / DefaultHelmConcurrent, so one test binary can be
// measured with different settings (docs/benchmarks.md, "Flux controller concurrency").
//
// By default no scheduler or kubelet runs: Pods are created (so ResourceQuota,
// LimitRange and Pod Security admission judge them) and stay Pending. HelmReleases
// here therefore need Helm's wait off; see clusters/README.md. With Options.Node a
// worker node runs as well (node.go, docs/node.md): containerd, kubelet, kube-proxy
// and CoreDNS in a network namespace the environment creates, kube-scheduler and a
// volume provisioner beside the control plane, images built by images/build.sh; its
// tests are in package nodetest.
//
// Outside tests, the only packages that import client-go are this one and
// internal/kube (gitops-api's cluster adapter), and this is the only one that
// imports controller-runtime's client; internal/status imports neither. Product
// code must not import testenv: only tests and cmd/storefleet-testenv do.
package testenv
