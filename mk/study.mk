# The shard-count study (issue 19, docs/benchmarks.md "Shard count study"): one row per
# target, each on its own real control plane with gitops-api's shard publisher
# (BenchmarkShardStudy in cmd/gitops-api/app). STORES is the fleet size (10,000 for the
# study's rows; a 2-core machine shared with others cannot run that in one sitting),
# IMPORT the bulk import after it, PROBES the stores timed one by one settled and
# during the drift pass. INSTALL=probes (the default) suspends the seeded and imported
# stores' HelmReleases, so kustomize-controller does all its work for them but Helm
# installs only the probes: 10,000 installs take hours here and cost the same at every
# shard count. INSTALL=all installs every store. Each row prints a line starting
# "STUDY-ROW |" for the table.
.PHONY: study-shards-256 study-shards-1024 study-shards-4096

STORES ?= 10000
IMPORT ?= 1000
PROBES ?= 20
INSTALL ?= probes

# A phony target gets no pattern rule: each row names its count.
study-shards-256: STUDY_COUNT = 256
study-shards-1024: STUDY_COUNT = 1024
study-shards-4096: STUDY_COUNT = 4096
## study-shards-N: one row of the shard-count study (N = 256, 1024, 4096); STORES=10000 by default
study-shards-256 study-shards-1024 study-shards-4096: testenv-tools
	STUDY_SHARDS=$(STUDY_COUNT) STUDY_STORES=$(STORES) STUDY_IMPORT=$(IMPORT) STUDY_PROBES=$(PROBES) STUDY_INSTALL=$(INSTALL) \
		$(GO) test -count=1 -run '^$$' -bench '^BenchmarkShardStudy$$' -benchtime 1x -timeout 150m ./cmd/gitops-api/app/
