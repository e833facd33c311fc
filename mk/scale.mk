# Scale (docs/scale.md): each limit on the path to 100,000 stores measured at 2,500,
# 5,000 and 10,000 stores with size 0 as the same run's baseline; each benchmark logs
# a linear fit (R², residuals) and its values at 50,000 and 100,000 stores. They add
# nothing to `make test` (benchmarks only) and need what `make deps` and
# testenv-tools already install. Run them under `nice` on a shared machine.
.PHONY: bench-scale bench-scale-writer bench-scale-apiserver bench-scale-memory bench-scale-burst bench-helm-pass

SCALE_BENCH = $(GO) test -run '^$$' -benchtime 1x -count 1 -v

## bench-scale: the writer, the API server's objects and the watcher, gitops-api at rest (~25 min).
bench-scale: bench-scale-writer bench-scale-memory bench-scale-apiserver

## bench-scale-writer: commit latency over HTTP and to a path, git receive-pack alone, grouped
## throughput from 100 clients, repository size (~10 min).
bench-scale-writer:
	$(SCALE_BENCH) -bench BenchmarkScaleWriter -timeout 60m ./internal/gitrepo/

## bench-scale-memory: gitops-api's fleet side at rest (in-memory clone + index after warm-up).
bench-scale-memory:
	$(SCALE_BENCH) -bench BenchmarkScaleMemory -timeout 60m ./internal/fleet/

## bench-scale-apiserver: every object render makes for a store created in the test environment's
## kube-apiserver; apiserver and etcd RSS, etcd DB size and keys, the watcher's heap and sync time.
bench-scale-apiserver: testenv-tools
	$(SCALE_BENCH) -bench BenchmarkScaleAPIServer -timeout 90m ./internal/status/e2e/

## bench-scale-burst: an onboarding burst of STOREFLEET_BENCH_BURST (default 1000) stores through the
## API until every HelmRelease is Ready, p50/p95 request → Ready (BenchmarkScaleBurst; CPU-heavy, up to 150 min on 2 cores).
## STOREFLEET_FLUX_HELM_CONCURRENT / STOREFLEET_FLUX_KUSTOMIZE_CONCURRENT set the controllers' --concurrent (default 4).
STOREFLEET_BENCH_BURST ?= 1000
bench-scale-burst: testenv-tools
	STOREFLEET_BENCH_BURST=$(STOREFLEET_BENCH_BURST) $(SCALE_BENCH) -bench BenchmarkScaleBurst -timeout 150m ./internal/status/e2e/

## bench-helm-pass: one periodic reconcile of every installed store by helm-controller, the
## HelmReleases' drift detection on (as rendered) against off: pass length, helm-controller and
## kube-apiserver CPU and API requests per store (BenchmarkHelmReleasePass; STOREFLEET_BENCH_STORES, default 100).
STOREFLEET_BENCH_STORES ?= 100
bench-helm-pass: testenv-tools
	STOREFLEET_BENCH_STORES=$(STOREFLEET_BENCH_STORES) $(SCALE_BENCH) -bench BenchmarkHelmReleasePass -timeout 150m ./internal/status/e2e/
