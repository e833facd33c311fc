# render: the schemas internal/k8sschema validates against come from Go modules that are not in go.mod
# (k8s.io/kubernetes for the OpenAPI v3 spec, the Flux controllers for their CRDs). Fetch them once on a fresh
# machine so `make test` runs offline afterwards.
.PHONY: render-schemas fuzz-render

RENDER_SCHEMA_MODULES := k8s.io/kubernetes@v1.36.3 github.com/fluxcd/helm-controller@v1.6.4 \
	github.com/fluxcd/source-controller@v1.9.6 github.com/fluxcd/kustomize-controller@v1.9.6

render-schemas:
	cd $${TMPDIR:-/tmp} && GOFLAGS=-mod=mod GOWORK=off $(GO) mod download $(RENDER_SCHEMA_MODULES)

DEPS_TARGETS += render-schemas

## fuzz-render: fuzz the renderer for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz-render:
	$(GO) test -run '^$$' -fuzz FuzzRender -fuzztime $(FUZZTIME) ./internal/render
