// Command proxyload measures the latency that `custody proxy` adds in front
// of the demo model server (examples/demo-model), with an open-loop load
// generator on loopback: requests are sent on a fixed schedule (RATE per
// second) whatever the answers' latency, and each latency is measured from
// the request's scheduled time, so a stall shows up in the percentiles
// instead of silently slowing the load (no coordinated omission).
//
// It builds and starts the demo server and the custody binary as separate
// processes, plus a receiver of the prediction wire contract
// (internal/ship/shiptest) in a third process (this binary, re-executed with
// -receiver), so the proxy's shipper runs (batching, gzip, HTTP) during the
// measurement and the receiver's work does not run in the load generator.
// Phases alternate direct / through the proxy for -rounds rounds of
// -duration/rounds each, after a warm-up of each.
//
// The load generator is a measuring instrument and keeps out of the way:
// requests are preformatted HTTP/1.1 bytes written on kept-alive loopback
// connections and answers are parsed in place (no net/http client, no
// allocation per request), its garbage collector is off (a memory limit
// stands guard), and besides the latency from the scheduled time it records
// the service time, taken right around the write and the read of each
// exchange. The demo server, the receiver and the proxy run with their
// defaults; the proxy's GC target is its own shipped default.
//
// Usage: go run ./bench/proxyload [-rate 1000] [-duration 20s] [-rounds 20]
// [-warmup 2s] [-proxy-procs N] [-cpuprofile FILE] [-baseline CUSTODY-BINARY]
//
// -baseline adds a second proxy (another build of custody, e.g. main's) as
// a third target in the same rounds, so two builds are compared under the
// same machine load.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	baseline := flag.String("baseline", "", "a second custody binary (e.g. built from main) proxied in the same run, as a third target")
	recvNice := flag.Int("receiver-nice", 19, "nice value of the receiver process (it stands in for a remote server; 0: the generator's priority)")
	receiver := flag.Bool("receiver", false, "internal: run the ingest receiver and print its addresses")
	flag.Parse()
	if *receiver {
		runReceiver()
		return
	}

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

	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	recvAddrs, stopRecv, recvPID := startPID(self, []string{"-receiver"}, regexp.MustCompile(`^receiver (\S+) stats (\S+)$`))
	defer stopRecv()
	// The receiver stands in for the custody server, which runs on other
	// machines: on this one it would take a core away from the measured
	// path in bursts (it decodes each ingest batch) during the proxied
	// phases only. It runs at the lowest CPU priority, unless -receiver-nice 0.
	if *recvNice != 0 {
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, recvPID, *recvNice); err != nil {
			log.Fatalf("receiver priority: %v", err)
		}
	}
	recvURL, statsURL := recvAddrs[1], recvAddrs[2]

	demoAddr, stopDemo := start(demo, []string{"--listen", "127.0.0.1:0", "--model", modelFile}, regexp.MustCompile(` on (127\.0\.0\.1:\d+)$`))
	defer stopDemo()
	startProxy := func(name, bin string, profile string) (addr string, stop func()) {
		addrFile := filepath.Join(tmp, name+".addr")
		cmd := exec.Command(bin, "proxy", "--listen", "127.0.0.1:0", "--addr-file", addrFile,
			"--upstream", "http://"+demoAddr[1], "--model", "win-probability@"+digest,
			"--server", recvURL, "--token", "tok", "--spill", filepath.Join(tmp, name+".spill"),
			"--mapping", "examples/demo-model/mapping.json", "--metrics-listen", "127.0.0.1:0", "--log-format", "text")
		if profile != "" {
			abs, err := filepath.Abs(profile)
			if err != nil {
				log.Fatal(err)
			}
			cmd.Args = append(cmd.Args, "--cpuprofile", abs)
		}
		logFile, err := os.Create(filepath.Join(tmp, name+".log"))
		if err != nil {
			log.Fatal(err)
		}
		cmd.Stderr = logFile
		if *procs > 0 {
			cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", *procs))
		}
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		return waitFile(addrFile), func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	}
	const path = "/v2/models/win-probability/infer"
	proxyAddr, stopProxy := startProxy("proxy", custody, *cpuprofile)
	defer stopProxy()
	targets := []*target{newTarget("direct", demoAddr[1], path), newTarget("proxy", proxyAddr, path)}
	if *baseline != "" {
		addr, stop := startProxy("baseline", *baseline, "")
		defer stop()
		targets = append(targets, newTarget("baseline", addr, path))
	}
	fmt.Printf("proxy overhead: %d req/s open loop, %v per target in %d rounds, GOMAXPROCS=%d, 1 row per request, receiver at nice %d\n",
		*rate, *dur, *rounds, runtime.GOMAXPROCS(0), *recvNice)

	// From here on the generator allocates (almost) nothing per request;
	// its collector stays off so it never pauses a measurement. The limit
	// is a guard, far above what the result slices need.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(1 << 30)

	results := map[string]*result{}
	for _, t := range targets {
		results[t.name] = &result{warmOK: t.load(*rate, *warm).ok} // warm-up
	}
	for range *rounds {
		for _, t := range targets {
			r := t.load(*rate, *dur/time.Duration(*rounds))
			results[t.name].add(r)
		}
	}
	d := results["direct"]
	for _, t := range targets {
		r := results[t.name]
		fmt.Printf("%-8s n=%d errors=%d achieved=%.0f req/s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (service time p50 %s  p99 %s)\n",
			t.name, len(r.lat), r.errors, float64(len(r.lat))/r.elapsed.Seconds(),
			ms(q(r.lat, 0.50)), ms(q(r.lat, 0.90)), ms(q(r.lat, 0.99)), ms(q(r.lat, 0.999)), ms(q(r.lat, 1)),
			ms(q(r.svc, 0.50)), ms(q(r.svc, 0.99)))
	}
	for _, t := range targets[1:] {
		p := results[t.name]
		o99 := q(p.lat, 0.99) - q(d.lat, 0.99)
		verdict := map[bool]string{true: "met", false: "NOT met"}[o99 < time.Millisecond]
		if o99 < 0 {
			verdict = "direct's p99 is the higher one: the machine's load, not the proxy, sets the tail"
		}
		fmt.Printf("%s overhead p50 %s  p99 %s  (target p99 < 1 ms: %s); service time overhead p50 %s  p99 %s\n", t.name,
			ms(q(p.lat, 0.50)-q(d.lat, 0.50)), ms(o99), verdict,
			ms(q(p.svc, 0.50)-q(d.svc, 0.50)), ms(q(p.svc, 0.99)-q(d.svc, 0.99)))
		fmt.Printf("  per round p99 overhead:")
		for i := range *rounds {
			fmt.Printf(" %s", ms(q(p.rounds[i], 0.99)-q(d.rounds[i], 0.99)))
		}
		fmt.Println()
	}
	var late []time.Duration
	for _, r := range results {
		late = append(late, r.late...)
	}
	fmt.Printf("generator: sends later than scheduled p50 %s  p99 %s  max %s\n", ms(q(late, 0.5)), ms(q(late, 0.99)), ms(q(late, 1)))

	// Every proxied request is a record at the receiver.
	var want int64
	for _, t := range targets[1:] {
		want += results[t.name].ok + results[t.name].warmOK
	}
	deadline := time.Now().Add(30 * time.Second)
	st := stats(statsURL)
	for st.Stored < int(want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		st = stats(statsURL)
	}
	fmt.Printf("records at the receiver: %d of %d proxied requests (duplicates %d, ingest requests %d)\n",
		st.Stored, want, st.Duplicates, st.Requests)
	for _, t := range targets[1:] {
		fmt.Printf("%s: %s", t.name, scrape(filepath.Join(tmp, t.name+".log"), *rate))
	}
}

// receiverStats is the receiver process's /stats answer.
type receiverStats struct {
	Stored     int   `json:"stored"`
	Duplicates int   `json:"duplicates"`
	Requests   int64 `json:"requests"`
}

// runReceiver is the -receiver process: a shiptest receiver, plus /stats
// on a second port; it prints both addresses and serves until killed.
func runReceiver() {
	recv, err := shiptest.New()
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "receiver %s stats http://%s/stats\n", recv.URL(), ln.Addr())
	log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(receiverStats{Stored: len(recv.Stored()), Duplicates: recv.Duplicates(), Requests: recv.Requests.Load()})
	})))
}

func stats(url string) receiverStats {
	var st receiverStats
	resp, err := http.Get(url)
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&st)
	return st
}

type result struct {
	lat     []time.Duration // from the scheduled send time to the end of the answer
	svc     []time.Duration // from the write of the request to the end of the answer
	late    []time.Duration // how much later than scheduled the request was written
	rounds  [][]time.Duration
	errors  int
	ok      int64
	warmOK  int64
	elapsed time.Duration
}

func (r *result) add(o *result) {
	r.lat = append(r.lat, o.lat...)
	r.svc = append(r.svc, o.svc...)
	r.late = append(r.late, o.late...)
	r.rounds = append(r.rounds, o.lat)
	r.errors += o.errors
	r.ok += o.ok
	r.elapsed += o.elapsed
}

func q(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
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

// target is one endpoint with its preformatted requests and a stack of
// idle workers, each with its own kept-alive connection. The most recently
// idle worker is reused first, as an HTTP client's idle pool would.
type target struct {
	name, addr string
	reqs       [][]byte
	mu         sync.Mutex
	idle       []*worker
	all        []*worker
}

func newTarget(name, addr, path string) *target {
	t := &target{name: name, addr: addr}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 256 {
		b := body(rng)
		req := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, addr, len(b))
		t.reqs = append(t.reqs, append(req, b...))
	}
	return t
}

type worker struct {
	t    *target
	jobs chan job
	conn net.Conn
	r    *bufio.Reader
}

type job struct {
	i  int
	at time.Time
	ph *phase
}

// phase is one load run's preallocated results.
type phase struct {
	lat, svc, late []time.Duration
	ok             []bool
	wg             sync.WaitGroup
}

// load sends rate req/s for d on a fixed schedule; latency counts from the
// scheduled send time.
func (t *target) load(rate int, d time.Duration) *result {
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	ph := &phase{lat: make([]time.Duration, n), svc: make([]time.Duration, n), late: make([]time.Duration, n), ok: make([]bool, n)}
	// The dispatcher sleeps in nanosleep(2) on its own thread: the Go
	// runtime's timers wake a sleeping goroutine with millisecond
	// granularity (epoll_wait), which made sends up to 1 ms late.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			ts := syscall.NsecToTimespec(int64(w))
			syscall.Nanosleep(&ts, nil)
		}
		ph.wg.Add(1)
		t.get().jobs <- job{i: i, at: at, ph: ph}
	}
	ph.wg.Wait()
	r := &result{lat: ph.lat, svc: ph.svc, late: ph.late, elapsed: time.Since(start)}
	for _, ok := range ph.ok {
		if ok {
			r.ok++
		} else {
			r.errors++
		}
	}
	return r
}

// get pops the most recently idle worker, or starts one.
func (t *target) get() *worker {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.idle); n > 0 {
		w := t.idle[n-1]
		t.idle = t.idle[:n-1]
		return w
	}
	w := &worker{t: t, jobs: make(chan job, 1)}
	t.all = append(t.all, w)
	t.idle = slices.Grow(t.idle, len(t.all))
	go w.run()
	return w
}

func (w *worker) run() {
	for j := range w.jobs {
		req := w.t.reqs[j.i%len(w.t.reqs)]
		sent := time.Now()
		err := w.do(req)
		done := time.Now()
		j.ph.lat[j.i] = done.Sub(j.at)
		j.ph.svc[j.i] = done.Sub(sent)
		j.ph.late[j.i] = sent.Sub(j.at)
		j.ph.ok[j.i] = err == nil
		w.t.mu.Lock()
		w.t.idle = append(w.t.idle, w)
		w.t.mu.Unlock()
		j.ph.wg.Done()
	}
}

var errStatus = errors.New("status is not 200")

// do writes one request and reads the whole answer; on an error the
// connection is closed and the next request dials a new one.
func (w *worker) do(req []byte) error {
	if w.conn == nil {
		c, err := net.Dial("tcp", w.t.addr)
		if err != nil {
			return err
		}
		w.conn = c
		if w.r == nil {
			w.r = bufio.NewReaderSize(c, 16<<10)
		} else {
			w.r.Reset(c)
		}
	}
	w.conn.SetDeadline(time.Now().Add(10 * time.Second))
	err := w.exchange(req)
	if err != nil && err != errStatus {
		w.conn.Close()
		w.conn = nil
	}
	return err
}

func (w *worker) exchange(req []byte) error {
	if _, err := w.conn.Write(req); err != nil {
		return err
	}
	line, err := w.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return errors.New("bad status line")
	}
	ok := string(line[9:12]) == "200"
	length, chunked, closing := -1, false, false
	for {
		line, err := w.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		switch {
		case hasPrefixFold(line, "content-length:"):
			length = atoi(bytes.TrimSpace(line[len("content-length:"):]))
		case hasPrefixFold(line, "transfer-encoding:"):
			chunked = true
		case hasPrefixFold(line, "connection:"):
			closing = bytes.Contains(bytes.ToLower(line), []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			line, err := w.r.ReadSlice('\n')
			if err != nil {
				return err
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			if err != nil {
				return err
			}
			if size == 0 {
				for { // trailers, then the empty line
					line, err := w.r.ReadSlice('\n')
					if err != nil {
						return err
					}
					if len(line) <= 2 {
						break
					}
				}
				break
			}
			if _, err := w.r.Discard(int(size) + 2); err != nil {
				return err
			}
		}
	case length >= 0:
		if _, err := w.r.Discard(length); err != nil {
			return err
		}
	default:
		return errors.New("answer without a length")
	}
	if closing {
		return io.EOF // the server closes: redial
	}
	if !ok {
		return errStatus
	}
	return nil
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

func atoi(b []byte) int {
	n := 0
	if len(b) == 0 {
		return -1
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// start runs bin and waits for a line of its stderr matching addrRE; it
// returns the submatches and a function that stops the process.
func start(bin string, args []string, addrRE *regexp.Regexp) ([]string, func()) {
	m, stop, _ := startPID(bin, args, addrRE)
	return m, stop
}

// startPID is start, also returning the process ID.
func startPID(bin string, args []string, addrRE *regexp.Regexp) ([]string, func(), int) {
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
			return m, func() { cmd.Process.Kill(); cmd.Wait() }, cmd.Process.Pid
		}
	}
	log.Fatalf("%s did not start", bin)
	return nil, nil, 0
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
	var cpuSeconds, gcCycles, gcPause float64
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
		if v, ok := strings.CutPrefix(line, "go_gc_duration_seconds_count "); ok {
			fmt.Sscan(v, &gcCycles)
		}
		if v, ok := strings.CutPrefix(line, "go_gc_duration_seconds_sum "); ok {
			fmt.Sscan(v, &gcPause)
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
		fmt.Fprintf(&out, "  garbage collections: %.0f (one per %.0f requests), stop-the-world pauses %s in all\n",
			gcCycles, c/max(gcCycles, 1), ms(time.Duration(gcPause*1e9)))
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
