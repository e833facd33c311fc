package metrics

import (
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every family, so Storefleet's series do not collide with the
// Go runtime's or another exporter's in the same Prometheus.
const namespace = "storefleet"

// Buckets for latencies that span a fast local push (milliseconds) to a slow
// remote one near the write deadline (30 s).
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// readyBuckets cover a store's request → ready, which waits for Flux and Helm:
// seconds to many minutes.
var readyBuckets = []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200}

// groupBuckets are stores per commit: the writer groups up to MaxBatch (1000).
var groupBuckets = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000}

// Metrics holds every family. Its methods are safe for concurrent use and are the
// observer hooks the rest of the project calls.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	commits        prometheus.Counter
	commitLatency  prometheus.Histogram
	commitStores   prometheus.Histogram
	pushFailures   *prometheus.CounterVec
	publishes      *prometheus.CounterVec
	publishLatency *prometheus.HistogramVec
	requestToReady prometheus.Histogram
	auths          *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	watchLag       *prometheus.HistogramVec
	connected      *prometheus.GaugeVec
	reconnects     *prometheus.CounterVec

	mu        sync.Mutex
	tenants   func() map[string]int
	tenantCap int
	queue     func() int
	// clusters are the served clusters' scrape-time sources, by name.
	clusters map[string]*Cluster
}

// OtherTenants is the tenant label of the stores of every tenant past the cap. A
// tenant name is a DNS label, which cannot begin with "_": no tenant can be
// mistaken for the rest.
const OtherTenants = "_other"

// UnknownTenant is the tenant label of stores whose folder is not read yet.
const UnknownTenant = "_unknown"

// knownPhases are reported even at zero, so a dashboard's series exist before the
// first store reaches a phase (and a phase that empties shows 0, not a gap). They
// mirror store.Phase, which this package does not import; a phase not listed here
// still shows, once it has stores.
var knownPhases = []string{
	"requested", "committed", "sourceFetched", "applied", "installing", "upgrading", "ready",
	"failed", "deleting", "retained", "purging", "deleted", "unknown",
}

// New registers every family, plus the Go runtime's and the process's collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), clusters: map[string]*Cluster{}}
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: namespace, Name: name, Help: help}
	}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts(f("http_requests_total",
		"HTTP requests answered by the API, by route pattern, method and status code.")), []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "http_request_duration_seconds",
		Help: "Time to answer an API request, by route pattern and method.", Buckets: latencyBuckets}, []string{"route", "method"})
	m.commits = prometheus.NewCounter(prometheus.CounterOpts(f("fleet_commits_total",
		"Commits the writer pushed to the fleet repository.")))
	m.commitLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "fleet_commit_duration_seconds",
		Help: "Time from the writer taking a group of changes to its commit landing on the remote, retries included.", Buckets: latencyBuckets})
	m.commitStores = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "fleet_commit_stores",
		Help: "Store changes carried by one fleet commit (the writer's group size).", Buckets: groupBuckets})
	m.pushFailures = prometheus.NewCounterVec(prometheus.CounterOpts(f("fleet_push_failures_total",
		"Push attempts to the fleet repository that did not land, by cause: conflict (the branch moved; retried), unreachable (nothing sent), unknown (cut off in flight).")), []string{"cause"})
	m.publishes = prometheus.NewCounterVec(prometheus.CounterOpts(f("shard_publishes_total",
		"Shard artifacts published for Flux, by cluster and result.")), []string{"cluster", "result"})
	m.publishLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "shard_publish_duration_seconds",
		Help: "Time to build and publish one shard artifact, by cluster.", Buckets: latencyBuckets}, []string{"cluster"})
	m.requestToReady = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "store_request_to_ready_seconds",
		Help: "Time from a store change being requested to the store reporting ready.", Buckets: readyBuckets})
	m.auths = prometheus.NewCounterVec(prometheus.CounterOpts(f("authentications_total",
		"Bearer token checks on /api/v1, by method (oidc, token, kubernetes; none when no token was accepted) and result.")), []string{"method", "result"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts(f("rate_limited_requests_total",
		"Requests refused with 429, by budget (reads or writes).")), []string{"budget"})
	m.watchLag = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "watch_lag_seconds",
		Help:    "Time from a Flux object's Ready condition changing in the cluster (whole seconds, the API server's clock) to the status watcher seeing it, by cluster.",
		Buckets: []float64{.5, 1, 2, 5, 10, 30, 60, 300}}, []string{"cluster"})
	m.connected = prometheus.NewGaugeVec(prometheus.GaugeOpts(f("cluster_connected",
		"1 while the status watcher reaches the cluster's API server, 0 while it does not (its stores then show unknown).")), []string{"cluster"})
	m.reconnects = prometheus.NewCounterVec(prometheus.CounterOpts(f("cluster_reconnects_total",
		"Times the status watcher got the cluster back after losing it.")), []string{"cluster"})
	for _, b := range []string{"reads", "writes"} {
		m.rateLimited.WithLabelValues(b)
	}
	for _, c := range []string{"conflict", "unreachable", "unknown"} {
		m.pushFailures.WithLabelValues(c)
	}
	// Every pair that can occur, so the family exists (at zero) before the first
	// token and a dashboard's rates have a series to start from.
	for _, method := range []string{"oidc", "token", "kubernetes"} {
		m.auths.WithLabelValues(method, "ok")
	}
	for _, result := range []string{"missing", "malformed", "invalid", "unavailable"} {
		m.auths.WithLabelValues("none", result)
	}
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.commits, m.commitLatency, m.commitStores, m.pushFailures,
		m.publishes, m.publishLatency, m.requestToReady, m.auths, m.rateLimited, m.watchLag, m.connected, m.reconnects,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(f("fleet_write_queue_depth",
			"Groups of changes waiting for the fleet writer.")), m.queueDepth),
		clusterCollector{m}, tenantCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is what Handler serves (tests gather and lint it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// methods bounds the method label: anything else a client sends is "other".
var methods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// HTTPRequest counts one answered request. route is the router's pattern ("" when
// none matched: counted as "unmatched", so probes of random paths add no series).
func (m *Metrics) HTTPRequest(method, route string, code int, d time.Duration) {
	if !methods[method] {
		method = "other"
	}
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// Authentication counts one bearer token check.
func (m *Metrics) Authentication(method, result string) {
	if method == "" {
		method = "none"
	}
	m.auths.WithLabelValues(method, result).Inc()
}

// RateLimited counts one request refused by a budget.
func (m *Metrics) RateLimited(budget string) { m.rateLimited.WithLabelValues(budget).Inc() }

// Commit records one commit that landed, with the store changes it carried.
func (m *Metrics) Commit(stores int, d time.Duration) {
	m.commits.Inc()
	m.commitLatency.Observe(d.Seconds())
	m.commitStores.Observe(float64(stores))
}

// PushFailed counts one push attempt that did not land.
func (m *Metrics) PushFailed(cause string) { m.pushFailures.WithLabelValues(cause).Inc() }

// Ready records a store reaching ready, d after its change was requested.
func (m *Metrics) Ready(d time.Duration) { m.requestToReady.Observe(d.Seconds()) }

// WatchTenants makes the stores-by-tenant gauge read count at every scrape. The
// limit tenants with the most stores get a series each; the others are summed as
// OtherTenants, so the series stay at most limit+2 however many tenants there are.
func (m *Metrics) WatchTenants(count func() map[string]int, limit int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tenants, m.tenantCap = count, limit
}

// WatchQueue makes the queue-depth gauge read depth at every scrape.
func (m *Metrics) WatchQueue(depth func() int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queue = depth
}

func (m *Metrics) queueDepth() float64 {
	m.mu.Lock()
	q := m.queue
	m.mu.Unlock()
	if q == nil {
		return 0
	}
	return float64(q())
}

func known(p string) bool {
	for _, k := range knownPhases {
		if k == p {
			return true
		}
	}
	return false
}

// tenantCollector reports storefleet_stores_by_tenant at scrape time, capped.
type tenantCollector struct{ m *Metrics }

var tenantDesc = prometheus.NewDesc(namespace+"_stores_by_tenant",
	"Stores by owning tenant: the tenants with the most stores up to the configured cap, the rest summed as tenant=\""+OtherTenants+"\".",
	[]string{"tenant"}, nil)

func (c tenantCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tenantDesc }

func (c tenantCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	count, limit := c.m.tenants, c.m.tenantCap
	c.m.mu.Unlock()
	if count == nil {
		return
	}
	for tenant, n := range capTenants(count(), limit) {
		ch <- prometheus.MustNewConstMetric(tenantDesc, prometheus.GaugeValue, float64(n), tenant)
	}
}

// capTenants keeps the limit tenants with the most stores (ties by name, so the
// choice is stable between scrapes) and sums the rest under OtherTenants.
func capTenants(byTenant map[string]int, limit int) map[string]int {
	type tc struct {
		t string
		n int
	}
	var list []tc
	// The rest is always reported, 0 while every tenant has its own series, so the
	// family exists even with no store and a sum over it is never a gap.
	out := map[string]int{OtherTenants: 0}
	for t, n := range byTenant {
		if t == "" {
			out[UnknownTenant] += n
			continue
		}
		list = append(list, tc{t, n})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].t < list[j].t
	})
	for i, x := range list {
		if i < limit {
			out[x.t] = x.n
		} else {
			out[OtherTenants] += x.n
		}
	}
	return out
}
