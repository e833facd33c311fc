//go:build linux

// Command burstload reproduces the no-cluster row of BenchmarkCreateBurst
// (internal/status/e2e/async_bench_test.go) without the test environment: for each
// gitops-api binary given, a fleet repository of its own behind git http-backend on
// loopback (internal/githttp) and `gitops-api serve` on it with the bench's flags
// (the chart index served from a local httptest server), then rounds of creates from
// 100 clients at once after a warm-up round each, the binaries taking turns round by
// round, so a machine whose load drifts weighs on each alike. Per round it prints
// the length, p50/p99 of the answers, the commits the round took (git rev-list on
// the bare repository) and the CPU time of serve, of git (this process's waited-for
// children: git http-backend and what it runs) and of this process (the load
// generator). Each server's log is gitops-api.<i>.log in -dir, and every request to
// its git server git.<i>.log.
//
// A binary named inproc is serve run in this process, as the benchmark runs it
// (-cpuprofile then profiles it with the load generator); bin@1000 sends 1000
// creates per round to that binary instead of -n (a continuous closed loop, as
// BenchmarkCreateThroughput's rounds). Start it with nice on a shared machine:
//
//	nice -n 19 go run ./hack/burstload -rounds 10 /tmp/a/gitops-api /tmp/b/gitops-api
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/serve"
)

const index = `apiVersion: v1
entries:
  woocommerce:
  - {name: woocommerce, version: 0.1.0}
  - {name: woocommerce, version: 0.1.1}
  medusa:
  - {name: medusa, version: 0.1.0}
`

var profFile *os.File

type instance struct {
	bin, url, bare, log string
	name                string // as given: bin[@creates per round]
	cmd                 *exec.Cmd
	lat                 []time.Duration
	took                time.Duration
	commits             []int
	roundLen            []time.Duration
	cpu                 [3]float64 // serve, git (the driver's children), driver, in seconds
}

// per is the creates per round: n, or what the binary's argument names after an @
// (bin@1000).
func (in *instance) per(n int) int {
	if _, v, ok := strings.Cut(in.name, "@"); ok {
		if k, err := strconv.Atoi(v); err == nil {
			return k
		}
	}
	return n
}

func (in *instance) cpuNow() float64 {
	if in.cmd == nil {
		return 0
	}
	return procCPU(in.cmd.Process.Pid)
}

// procCPU is the user+system CPU seconds of process pid so far.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}

// childCPU is the CPU seconds of this process's waited-for children (git http-backend
// and the git commands it runs; gitops-api only once it exited).
func childCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return tv(ru.Utime) + tv(ru.Stime)
}

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return tv(ru.Utime) + tv(ru.Stime)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func main() {
	rounds := flag.Int("rounds", 5, "measured rounds per binary")
	per := flag.Int("n", 100, "creates per round")
	clients := flag.Int("c", 100, "clients")
	keep := flag.String("dir", "", "work folder (default: a temporary one)")
	prof := flag.String("cpuprofile", "", "CPU profile of this process over the measured rounds (with an inproc serve)")
	extra := flag.String("flags", "", "extra serve flags, space-separated, for every binary")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("usage: burstload [flags] gitops-api-binary...")
	}
	dir := *keep
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "burstload-"); err != nil {
			log.Fatal(err)
		}
	}
	charts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, index)
	}))
	defer charts.Close()

	var insts []*instance
	for i, bin := range flag.Args() {
		root := filepath.Join(dir, fmt.Sprintf("git%d", i))
		git, err := githttp.New(root)
		if err != nil {
			log.Fatal(err)
		}
		bare, err := git.InitBare("fleet.git")
		if err != nil {
			log.Fatal(err)
		}
		gitLog, err := os.Create(filepath.Join(dir, fmt.Sprintf("git.%d.log", i)))
		if err != nil {
			log.Fatal(err)
		}
		gln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		var glmu sync.Mutex
		gh := git.Handler()
		gsrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t0 := time.Now()
			gh.ServeHTTP(w, r)
			glmu.Lock()
			fmt.Fprintf(gitLog, "%s %s %s %d %.1fms\n", t0.UTC().Format("15:04:05.000"), r.Method, r.URL.RequestURI(), r.ContentLength, ms(time.Since(t0)))
			glmu.Unlock()
		})}
		go func() { _ = gsrv.Serve(gln) }()
		defer gsrv.Close()
		gitURL := "http://" + gln.Addr().String()
		name := bin
		bin, _, _ = strings.Cut(bin, "@")
		in := &instance{name: name, bin: bin, bare: bare, log: filepath.Join(dir, fmt.Sprintf("gitops-api.%d.log", i))}
		args := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, fmt.Sprintf("data%d", i)),
			"--fleet-url", gitURL + "/fleet.git", "--internal-listen", "none",
			"--chart-repository", "storefleet", "--chart-versions", charts.URL + "/index.yaml", "--shutdown-grace", "5s"}
		args = append(args, strings.Fields(*extra)...)
		if err := in.start(args); err != nil {
			log.Fatal(err)
		}
		defer in.stop()
		insts = append(insts, in)
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			log.Fatal(err)
		}
		// Started after the warm-up below.
		defer func() { pprof.StopCPUProfile(); f.Close() }()
		profFile = f
	}
	// Warm-up rounds, not counted.
	for i, in := range insts {
		in.round(fmt.Sprintf("w%d", i), in.per(*per), *clients)
	}
	for _, in := range insts {
		in.lat, in.took, in.commits, in.roundLen = nil, 0, nil, nil
	}
	if profFile != nil {
		if err := pprof.StartCPUProfile(profFile); err != nil {
			log.Fatal(err)
		}
	}
	for r := range *rounds {
		for i, in := range insts {
			c0 := in.count()
			s0, g0, d0 := in.cpuNow(), childCPU(), selfCPU()
			lat, took := in.round(fmt.Sprintf("b%d-%d", i, r), in.per(*per), *clients)
			s1, g1, d1 := in.cpuNow(), childCPU(), selfCPU()
			c := in.count() - c0
			in.cpu[0] += s1 - s0
			in.cpu[1] += g1 - g0
			in.cpu[2] += d1 - d0
			in.lat = append(in.lat, lat...)
			in.took += took
			in.commits = append(in.commits, c)
			in.roundLen = append(in.roundLen, took)
			fmt.Printf("round %d %-28s %6.0f ms  p50 %5d p99 %5d ms  commits %d  cpu ms: serve %4.0f git %4.0f driver %4.0f\n", r, in.name, ms(took),
				ms64(pct(lat, 0.5)), ms64(pct(lat, 0.99)), c, (s1-s0)*1000, (g1-g0)*1000, (d1-d0)*1000)
		}
	}
	for _, in := range insts {
		fmt.Printf("CPU per round (ms) %-28s serve %.0f git %.0f driver %.0f\n", in.name,
			in.cpu[0]*1000/float64(*rounds), in.cpu[1]*1000/float64(*rounds), in.cpu[2]*1000/float64(*rounds))
		fmt.Printf("TOTAL %-28s %5.1f creates/s  p50 %5d  p99 %5d  max %5d ms  commits/round %v  round ms %v\n", in.name,
			float64(len(in.lat))/in.took.Seconds(), ms64(pct(in.lat, 0.5)), ms64(pct(in.lat, 0.99)), ms64(pct(in.lat, 1)),
			in.commits, roundMs(in.roundLen))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func ms64(d time.Duration) int64 { return d.Milliseconds() }

func roundMs(ds []time.Duration) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.Milliseconds()
	}
	return out
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (in *instance) start(args []string) error {
	logF, err := os.Create(in.log)
	if err != nil {
		return err
	}
	if in.bin == "inproc" {
		// serve in this process, as the benchmark runs it (runServe).
		pr, pw := io.Pipe()
		go func() {
			err := serve.Run(context.Background(), args[1:], func(string) string { return "" }, pw, logF)
			pw.CloseWithError(fmt.Errorf("serve exited: %v", err))
		}()
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err != nil {
			return err
		}
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		in.url = strings.TrimPrefix(strings.TrimSpace(line), "gitops-api listening on ")
		return nil
	}
	cmd := exec.Command("nice", append([]string{"-n", "19", in.bin}, args...)...)
	cmd.Stderr = logF
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	in.cmd = cmd
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("%s: %v (log %s)", in.bin, err, in.log)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "gitops-api listening on ")
	if !ok {
		return fmt.Errorf("unexpected first line %q", line)
	}
	in.url = addr
	return nil
}

func (in *instance) stop() {
	if in.cmd != nil && in.cmd.Process != nil {
		_ = in.cmd.Process.Signal(os.Interrupt)
		_ = in.cmd.Wait()
	}
}

func (in *instance) count() int {
	out, err := exec.Command("git", "-C", in.bare, "rev-list", "--count", "main").Output()
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// round creates n stores named <prefix>-<i> from clients clients at once (closed
// loop), as the bench's burst does; every answer must be a 202.
func (in *instance) round(prefix string, n, clients int) ([]time.Duration, time.Duration) {
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	t0 := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				body, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("%s-%d", prefix, i), "engine": "woocommerce", "plan": "basic",
					"settings": map[string]any{"adminEmail": "owner@example.com"}})
				start := time.Now()
				resp, err := client.Post(in.url+"/api/v1/stores", "application/json", bytes.NewReader(body))
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
		log.Fatalf("%s: %d of %d creates failed, first: %s", in.bin, len(failures), n, failures[0])
	}
	return lat, took
}
