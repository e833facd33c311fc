package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
)

// burstClients is how many clients create at once in BenchmarkCreateBurst.
const burstClients = 100

// BenchmarkCreateBurst is the goal for the publish queue: creates through
// the API from 100 clients at once with a cluster connected (the test environment's
// API server and Flux, busy reconciling what the earlier rounds created) against
// the same API with no cluster, in the same run. Each has a fleet repository of its
// own behind the same kind of server (git http-backend on loopback), and the two
// take turns in rounds, so a machine whose load drifts (other work on it) weighs on
// both alike. A warm-up round of each comes first and is not counted. It reports
// creates/s of each, their ratio (goal ≥ 0.8), p50 and p99 of the create's answer
// (goal p99 < 1 s with the cluster), and how long after the last answer the publish
// queue was empty. STOREFLEET_BENCH_BURST sets the creates per row (default 500,
// in 5 rounds).
func BenchmarkCreateBurst(b *testing.B) {
	n := envCount("STOREFLEET_BENCH_BURST", 500)
	n *= b.N
	const rounds = 5
	burstRun++

	git, err := githttp.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := git.InitBare("fleet.git"); err != nil {
		b.Fatal(err)
	}
	if err := git.Start(); err != nil {
		b.Fatal(err)
	}
	defer git.Close()
	plain, err := runServe(env, fmt.Sprintf("gitops-api.nocluster.%d.log", burstRun),
		"--listen", "127.0.0.1:0", "--data-dir", b.TempDir(), "--fleet-url", git.URL()+"/fleet.git", "--internal-listen", "none",
		"--chart-repository", "storefleet", "--chart-versions", env.ChartRepoURL+"/index.yaml", "--shutdown-grace", "5s")
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := plain.stop(); err != nil {
			b.Logf("the no-cluster gitops-api stopped: %v", err)
		}
	}()
	a := startAPI(b)

	warm := max(burstClients, n/rounds)
	burst(b, plain.URL, fmt.Sprintf("nc%dw", burstRun), warm)
	burst(b, a.URL, fmt.Sprintf("wc%dw", burstRun), warm)
	var alone, connected burstResult
	procs, t0 := procTimes(), time.Now()
	for r := range rounds {
		k := n / rounds
		if r == rounds-1 {
			k = n - k*(rounds-1)
		}
		alone.add(burst(b, plain.URL, fmt.Sprintf("nc%d-%d", burstRun, r), k))
		connected.add(burst(b, a.URL, fmt.Sprintf("wc%d-%d", burstRun, r), k))
	}
	busy := busiest(procs, procTimes(), time.Since(t0))
	drained := time.Now()
	for {
		depth := sum(scrape(b)["storefleet_shard_publish_queue_depth"], nil)
		if depth <= 0 {
			break // empty, or a gitops-api without a queue (a run of the code before it)
		}
		if time.Since(drained) > 10*time.Minute {
			b.Fatalf("the publish queue still holds %v shards 10 minutes after the burst", depth)
		}
		time.Sleep(100 * time.Millisecond)
	}
	drain := time.Since(drained)

	ratio := connected.rate() / alone.rate()
	b.ReportMetric(alone.rate(), "nocluster-creates/s")
	b.ReportMetric(connected.rate(), "cluster-creates/s")
	b.ReportMetric(ratio, "cluster/nocluster")
	b.ReportMetric(float64(alone.pct(0.5).Milliseconds()), "nocluster-p50-ms")
	b.ReportMetric(float64(alone.pct(0.99).Milliseconds()), "nocluster-p99-ms")
	b.ReportMetric(float64(connected.pct(0.5).Milliseconds()), "cluster-p50-ms")
	b.ReportMetric(float64(connected.pct(0.99).Milliseconds()), "cluster-p99-ms")
	b.ReportMetric(drain.Seconds(), "queue-drain-s")
	b.Logf("%d creates per row from %d clients in %d rounds: no cluster %.0f/s (p50 %v, p99 %v, max %v); cluster connected %.0f/s (p50 %v, p99 %v, max %v); ratio %.2f; publish queue empty %v after the last answer",
		n, burstClients, rounds, alone.rate(), alone.pct(0.5), alone.pct(0.99), alone.pct(1),
		connected.rate(), connected.pct(0.5), connected.pct(0.99), connected.pct(1), ratio, drain.Round(10*time.Millisecond))
	b.Logf("busiest processes during the rounds: %s", busy)
}

var burstRun int

// burstResult is the answers' latencies of one or more bursts and the time they
// took.
type burstResult struct {
	lat  []time.Duration
	took time.Duration
}

func (r *burstResult) add(o burstResult) {
	r.lat = append(r.lat, o.lat...)
	r.took += o.took
}

func (r burstResult) rate() float64 { return float64(len(r.lat)) / r.took.Seconds() }

func (r burstResult) pct(p float64) time.Duration { return percentile(r.lat, p) }

// burst creates n stores named <prefix>-<i> from burstClients clients at once; every
// answer must be a 202.
func burst(b *testing.B, base, prefix string, n int) burstResult {
	b.Helper()
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: burstClients}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	t0 := time.Now()
	for range burstClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				body, _ := json.Marshal(createBody(fmt.Sprintf("%s-%d", prefix, i), ""))
				start := time.Now()
				resp, err := client.Post(base+"/api/v1/stores", "application/json", bytes.NewReader(body))
				lat[i] = time.Since(start)
				if err == nil {
					var msg bytes.Buffer
					_, _ = msg.ReadFrom(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("%d %s", resp.StatusCode, msg.String())
					}
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	if len(failures) > 0 {
		b.Fatalf("%d of %d creates failed, first: %s", len(failures), n, failures[0])
	}
	return burstResult{lat: lat, took: took}
}
