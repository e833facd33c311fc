package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Cluster is the hooks of one cluster gitops-api serves: every per-cluster family
// carries its name as the cluster label, so a dashboard tells the clusters apart
// (one API may serve several). The number of clusters is what the operator
// configured, so the label stays bounded.
type Cluster struct {
	m    *Metrics
	name string

	// guarded by m.mu
	everConnected bool // the first connection is no reconnect
	phases        func() map[string]int
	publishQ      func() int
}

// Cluster registers a served cluster and returns its hooks. Its series exist at
// zero from here on (not connected, nothing published), so a
// dashboard has them before anything happens. Asking twice for one name returns
// the same hooks.
func (m *Metrics) Cluster(name string) *Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clusters[name]; ok {
		return c
	}
	c := &Cluster{m: m, name: name}
	m.clusters[name] = c
	m.connected.WithLabelValues(name)
	m.reconnects.WithLabelValues(name)
	for _, r := range []string{"ok", "error"} {
		m.publishes.WithLabelValues(name, r)
	}
	return c
}

// ShardPublished records one shard publish; err is its outcome.
func (c *Cluster) ShardPublished(d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	c.m.publishes.WithLabelValues(c.name, result).Inc()
	c.m.publishLatency.WithLabelValues(c.name).Observe(d.Seconds())
}

// WatchLag records how long after a change in the cluster the watcher saw it.
func (c *Cluster) WatchLag(d time.Duration) {
	c.m.watchLag.WithLabelValues(c.name).Observe(d.Seconds())
}

// Connected records a change of the cluster connection.
func (c *Cluster) Connected(ok bool) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if !ok {
		c.m.connected.WithLabelValues(c.name).Set(0)
		return
	}
	c.m.connected.WithLabelValues(c.name).Set(1)
	if c.everConnected {
		c.m.reconnects.WithLabelValues(c.name).Inc()
	}
	c.everConnected = true
}

// WatchPhases makes the cluster's stores-by-phase series read count at every
// scrape: the tracker already holds every store's phase, so nothing is kept twice.
func (c *Cluster) WatchPhases(count func() map[string]int) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	c.phases = count
}

// WatchPublishQueue makes the cluster's publish-queue series read depth at every
// scrape.
func (c *Cluster) WatchPublishQueue(depth func() int) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	c.publishQ = depth
}

// clusterCollector reports, at scrape time, storefleet_stores by cluster and phase
// and storefleet_shard_publish_queue_depth by cluster.
type clusterCollector struct{ m *Metrics }

var (
	storesDesc = prometheus.NewDesc(namespace+"_stores",
		"Stores by cluster and current phase (as the status tracker sees them; none without a cluster).", []string{"cluster", "phase"}, nil)
	publishQueueDesc = prometheus.NewDesc(namespace+"_shard_publish_queue_depth",
		"Shards with pushed commits waiting for their publish (in flight included), by cluster.", []string{"cluster"}, nil)
)

func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storesDesc
	ch <- publishQueueDesc
}

func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	type source struct {
		name   string
		phases func() map[string]int
		queue  func() int
	}
	c.m.mu.Lock()
	var sources []source
	for name, cl := range c.m.clusters {
		sources = append(sources, source{name, cl.phases, cl.publishQ})
	}
	c.m.mu.Unlock()
	for _, s := range sources {
		depth := 0
		if s.queue != nil {
			depth = s.queue()
		}
		ch <- prometheus.MustNewConstMetric(publishQueueDesc, prometheus.GaugeValue, float64(depth), s.name)
		byPhase := map[string]int{}
		if s.phases != nil {
			byPhase = s.phases()
		}
		for _, p := range knownPhases {
			ch <- prometheus.MustNewConstMetric(storesDesc, prometheus.GaugeValue, float64(byPhase[p]), s.name, p)
		}
		for p, n := range byPhase {
			if !known(p) && p != "" {
				ch <- prometheus.MustNewConstMetric(storesDesc, prometheus.GaugeValue, float64(n), s.name, p)
			}
		}
	}
}
