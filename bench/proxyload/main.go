// Command proxyload measures the latency that `custody proxy` adds in front
// of the demo model server (examples/demo-model), with an open-loop load
// generator on loopback: requests are sent on a fixed schedule (RATE per
// second) whatever the answers' latency, and each latency is measured from
// the request's scheduled time, so a stall shows up in the percentiles
// instead of silently slowing the load (no coordinated omission).
//
// It builds and starts the demo server and the custody binary as separate
// processes, plus an in-process receiver of the prediction wire contract
// (internal/ship/shiptest), so the proxy's shipper runs (batching, gzip,
// HTTP) during the measurement. Phases alternate direct / through the proxy
// for -rounds rounds of -duration/rounds each, after a warm-up of each.
//
// Usage: go run ./bench/proxyload [-rate 1000] [-duration 20s] [-rounds 20]
// [-warmup 2s] [-proxy-procs N]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/custody-ml/custody/internal/ship/shiptest"
)

func main() {
	rate := flag.Int("rate", 1000, "requests per second (open loop)")
	dur := flag.Duration("duration", 20*time.Second, "measured time per target (split over the rounds)")
	rounds := flag.Int("rounds", 20, "alternate direct and proxied phases this many times (short phases see the same machine load)")
	warm := flag.Duration("warmup", 2*time.Second, "warm-up per target (not measured)")
	procs := flag.Int("proxy-procs", 0, "GOMAXPROCS of the proxy process (0: the Go default)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the proxy process (the whole run) to this file")
	flag.Parse()

	tmp, err := os.MkdirTemp("", "proxyload")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	custody := filepath.Join(tmp, "custody")
	demo := filepath.Join(tmp, "demo-model")
	for _, b := range [][2]string{{custody, "./cmd/custody"}, {demo, "./examples/demo-model"}} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			log.Fatalf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	modelFile := "examples/demo-model/model/model.json"
	raw, err := os.ReadFile(modelFile)
	if err != nil {
		log.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	recv, err := shiptest.New()
	if err != nil {
		log.Fatal(err)
	}
	defer recv.Stop()

	demoAddr, stopDemo := start(demo, []string{"--listen", "127.0.0.1:0", "--model", modelFile}, regexp.MustCompile(` on (127\.0\.0\.1:\d+)$`))
	defer stopDemo()
	addrFile := filepath.Join(tmp, "proxy.addr")
	proxyCmd := exec.Command(custody, "proxy", "--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--upstream", "http://"+demoAddr, "--model", "win-probability@"+digest,
		"--server", recv.URL(), "--token", recv.Token, "--spill", filepath.Join(tmp, "spill"),
		"--mapping", "examples/demo-model/mapping.json", "--metrics-listen", "127.0.0.1:0", "--log-format", "text")
	if *cpuprofile != "" {
		abs, err := filepath.Abs(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		proxyCmd.Args = append(proxyCmd.Args, "--cpuprofile", abs)
	}
	proxyLog, err := os.Create(filepath.Join(tmp, "proxy.log"))
	if err != nil {
		log.Fatal(err)
	}
	proxyCmd.Stderr = proxyLog
	if *procs > 0 {
		proxyCmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", *procs))
	}
	if err := proxyCmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { proxyCmd.Process.Signal(os.Interrupt); proxyCmd.Wait() }()
	proxyAddr := waitFile(addrFile)

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true}, Timeout: 10 * time.Second}
	targets := []struct{ name, url string }{
		{"direct", "http://" + demoAddr + "/v2/models/win-probability/infer"},
		{"proxy", "http://" + proxyAddr + "/v2/models/win-probability/infer"},
	}
	fmt.Printf("proxy overhead: %d req/s open loop, %v per target in %d rounds, GOMAXPROCS=%d, 1 row per request\n",
		*rate, *dur, *rounds, runtime.GOMAXPROCS(0))
	results := map[string]*result{"direct": {}, "proxy": {}}
	for _, t := range targets {
		results[t.name].warmOK = load(client, t.url, *rate, *warm).ok // warm-up
	}
	for range *rounds {
		for _, t := range targets {
			r := load(client, t.url, *rate, *dur/time.Duration(*rounds))
			results[t.name].add(r)
		}
	}
	d, p := results["direct"], results["proxy"]
	for _, name := range []string{"direct", "proxy"} {
		r := results[name]
		fmt.Printf("%-7s n=%d errors=%d achieved=%.0f req/s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", name, len(r.lat), r.errors,
			float64(len(r.lat))/r.elapsed.Seconds(), ms(r.q(0.50)), ms(r.q(0.90)), ms(r.q(0.99)), ms(r.q(0.999)), ms(r.q(1)))
	}
	o99 := p.q(0.99) - d.q(0.99)
	verdict := map[bool]string{true: "met", false: "NOT met"}[o99 < time.Millisecond]
	if o99 < 0 {
		verdict = "direct's p99 is the higher one: the machine's load, not the proxy, sets the tail"
	}
	fmt.Printf("overhead p50 %s  p99 %s  (target p99 < 1 ms: %s)\n", ms(p.q(0.50)-d.q(0.50)), ms(o99), verdict)

	// Every proxied request is a record at the receiver.
	want := p.ok + p.warmOK
	deadline := time.Now().Add(30 * time.Second)
	for len(recv.Stored()) < int(want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("records at the receiver: %d of %d proxied requests (duplicates %d, ingest requests %d)\n",
		len(recv.Stored()), want, recv.Duplicates(), recv.Requests.Load())
	fmt.Print(scrape(filepath.Join(tmp, "proxy.log"), *rate))
}

type result struct {
	lat     []time.Duration
	errors  int
	ok      int64
	warmOK  int64
	elapsed time.Duration
}

func (r *result) add(o *result) {
	r.lat = append(r.lat, o.lat...)
	r.errors += o.errors
	r.ok += o.ok
	r.elapsed += o.elapsed
}

func (r *result) q(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d.Microseconds())/1000) }

// body is one request with random features (the example feature generator).
func body(rng *rand.Rand) []byte {
	b, _ := json.Marshal(map[string]any{"inputs": []map[string]any{
		{"name": "elo_diff", "shape": []int{1}, "datatype": "FP64", "data": []float64{rng.NormFloat64() * 100}},
		{"name": "rest_days", "shape": []int{1}, "datatype": "FP64", "data": []float64{float64(rng.IntN(5))}},
		{"name": "injuries", "shape": []int{1}, "datatype": "FP64", "data": []float64{float64(rng.IntN(4))}},
		{"name": "home", "shape": []int{1}, "datatype": "FP64", "data": []float64{float64(rng.IntN(2))}},
	}})
	return b
}

// load sends rate req/s for d on a fixed schedule; latency counts from the
// scheduled send time.
func load(client *http.Client, url string, rate int, d time.Duration) *result {
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	okv := make([]bool, n)
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = body(rng)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			lat[i] = time.Since(at)
			okv[i] = err == nil
		}()
	}
	wg.Wait()
	r := &result{lat: lat, elapsed: time.Since(start)}
	for _, ok := range okv {
		if ok {
			r.ok++
		} else {
			r.errors++
		}
	}
	return r
}

func start(bin string, args []string, addrRE *regexp.Regexp) (string, func()) {
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, stderr)
			return m[1], func() { cmd.Process.Kill(); cmd.Wait() }
		}
	}
	log.Fatalf("%s did not start", bin)
	return "", nil
}

func waitFile(path string) string {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	log.Fatalf("%s did not appear", path)
	return ""
}

// scrape reads the proxy's own metrics: records shipped and the mean time
// spent inside the proxy.
func scrape(logFile string, rate int) string {
	raw, _ := os.ReadFile(logFile)
	m := regexp.MustCompile(`msg=metrics addr=(\S+)`).FindSubmatch(raw)
	if m == nil {
		return ""
	}
	resp, err := http.Get("http://" + string(m[1]) + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var out strings.Builder
	vals := map[string]float64{}
	buckets := map[string][][2]float64{} // histogram -> (le, cumulative count)
	var cpuSeconds float64
	leRE := regexp.MustCompile(`^(custody_proxy_(?:overhead|upstream_duration)_seconds)_bucket\{.*le="([^"]+)".*\} (\S+)$`)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if m := leRE.FindStringSubmatch(line); m != nil {
			var le, c float64
			fmt.Sscan(m[2], &le)
			if m[2] == "+Inf" {
				le = math.Inf(1)
			}
			fmt.Sscan(m[3], &c)
			buckets[m[1]] = append(buckets[m[1]], [2]float64{le, c})
		}
		if strings.HasPrefix(line, "process_cpu_seconds_total ") {
			fmt.Sscan(strings.TrimPrefix(line, "process_cpu_seconds_total "), &cpuSeconds)
		}
		for _, name := range []string{"custody_proxy_overhead_seconds_sum", "custody_proxy_overhead_seconds_count",
			"custody_ship_records_shipped_total", "custody_ship_records_spilled_total", "custody_ship_records_dropped_total"} {
			if strings.HasPrefix(line, name+"{") {
				var v float64
				fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
				vals[name] += v
			}
		}
	}
	if c := vals["custody_proxy_overhead_seconds_count"]; c > 0 {
		fmt.Fprintf(&out, "proxy's own metrics: mean in-proxy time %s over %.0f requests; records shipped %.0f, spilled %.0f, dropped %.0f\n",
			ms(time.Duration(vals["custody_proxy_overhead_seconds_sum"]/c*1e9)), c,
			vals["custody_ship_records_shipped_total"], vals["custody_ship_records_spilled_total"], vals["custody_ship_records_dropped_total"])
		fmt.Fprintf(&out, "  proxy process CPU (user+system, shipping and extraction included): %.0f µs per request, i.e. %.0f%% of one core at %d req/s\n",
			cpuSeconds/c*1e6, 100*cpuSeconds/c*float64(rate), rate)
	}
	for _, h := range []string{"custody_proxy_upstream_duration_seconds", "custody_proxy_overhead_seconds"} {
		b := buckets[h]
		if len(b) == 0 {
			continue
		}
		q := func(p float64) string {
			total := b[len(b)-1][1]
			for _, x := range b {
				if x[1] >= p*total {
					return fmt.Sprintf("<= %gms", x[0]*1000)
				}
			}
			return "?"
		}
		fmt.Fprintf(&out, "  %s (in the proxy, bucket bounds): p50 %s, p99 %s\n", h, q(0.5), q(0.99))
	}
	return out.String()
}
