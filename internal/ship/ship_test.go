package ship

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/custody-ml/custody/internal/ship/shiptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func rec(i int, model string) []byte {
	return fmt.Appendf(nil, `{"ts":"2026-11-22T03:00:00Z","request_id":"r-%06d","model":%q,"model_sha256":"0123456789abcdef","features":{"x":%d},"prediction":0.5}`, i, model, i)
}

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("r-%06d", i))
	}
	return out
}

type fixture struct {
	s   *Shipper
	r   *shiptest.Receiver
	reg *prometheus.Registry
}

func newFixture(t *testing.T, spillDir string, mod func(*Options)) *fixture {
	t.Helper()
	return newFixtureWith(t, newReceiver(t), spillDir, mod)
}

func newFixtureWith(t *testing.T, r *shiptest.Receiver, spillDir string, mod func(*Options)) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := Options{
		Server: r.URL(), Token: r.Token, SpillDir: spillDir, Registerer: reg,
		BatchSize: 50, FlushInterval: 20 * time.Millisecond,
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		Timeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return &fixture{s: s, r: r, reg: reg}
}

func (f *fixture) enqueue(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if !f.s.Enqueue(rec(i, "m")) {
			t.Fatalf("record %d dropped", i)
		}
	}
}

func (f *fixture) waitStored(t *testing.T, want []string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d records", len(want)), func() bool { return len(f.r.Stored()) >= len(want) })
	if got := f.r.Stored(); !slices.Equal(got, want) {
		t.Fatalf("stored %d records, want %d in order; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestShipInOrder(t *testing.T) {
	f := newFixture(t, "", nil)
	f.enqueue(t, 0, 1000)
	f.waitStored(t, ids(0, 1000))
	waitFor(t, "shipped counter", func() bool { return testutil.ToFloat64(f.s.m.shipped) == 1000 })
}

// The server goes away (listener closed): records spill to disk, then drain
// in order, exactly once, when it comes back; the spill ends empty.
func TestShipOutageSpillsAndDrainsInOrder(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, dir, func(o *Options) { o.SegmentBytes = 4 << 10 })
	f.enqueue(t, 0, 100)
	f.waitStored(t, ids(0, 100))

	f.r.Stop()
	f.enqueue(t, 100, 1100)
	waitFor(t, "records spilled", func() bool { return testutil.ToFloat64(f.s.m.spilled) >= 1000 })
	segs, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if len(segs) < 2 {
		t.Fatalf("want several spill segments, got %d", len(segs))
	}
	if testutil.ToFloat64(f.s.m.spillBytes) == 0 {
		t.Fatal("spill bytes gauge is 0 during the outage")
	}

	mustRestart(t, f.r)
	f.enqueue(t, 1100, 1200)
	f.waitStored(t, ids(0, 1200))
	waitFor(t, "spill drained", func() bool {
		segs, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
		return len(segs) == 0
	})
	// The gauge follows the deletion.
	waitFor(t, "spill bytes gauge 0", func() bool { return testutil.ToFloat64(f.s.m.spillBytes) == 0 })
	// Back to memory: new records flow without touching the disk.
	spilled := testutil.ToFloat64(f.s.m.spilled)
	f.enqueue(t, 1200, 1300)
	f.waitStored(t, ids(0, 1300))
	if testutil.ToFloat64(f.s.m.spilled) != spilled {
		t.Fatal("records spilled after the server came back")
	}
}

func TestShipRetriesStatuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spill bool
		codes []int
	}{
		{"500 spill", true, []int{500, 500, 503}},
		{"429 spill", true, []int{429, 429}},
		{"500 memory", false, []int{500, 502, 500}},
		{"429 memory", false, []int{429}},
		{"401 then ok", false, []int{401}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := ""
			if tc.spill {
				dir = t.TempDir()
			}
			f := newFixture(t, dir, nil)
			f.r.FailNext(tc.codes...)
			f.enqueue(t, 0, 300)
			f.waitStored(t, ids(0, 300))
			if tc.spill && testutil.ToFloat64(f.s.m.spilled) == 0 {
				t.Fatal("nothing spilled")
			}
			if n := testutil.ToFloat64(f.s.m.dropped.WithLabelValues("refused")); n != 0 {
				t.Fatalf("%v records refused", n)
			}
		})
	}
}

// A 400 refuses the batch as a whole: it is dropped (counted) and later
// records still flow.
func TestShipRefusedBatchDropped(t *testing.T) {
	f := newFixture(t, "", func(o *Options) { o.BatchSize = 10 })
	f.r.FailNext(400)
	f.enqueue(t, 0, 10)
	waitFor(t, "refused batch", func() bool { return testutil.ToFloat64(f.s.m.dropped.WithLabelValues("refused")) == 10 })
	f.enqueue(t, 10, 20)
	f.waitStored(t, ids(10, 20))
}

func TestShipPartialRejection(t *testing.T) {
	f := newFixture(t, "", nil)
	var want []string
	for i := range 100 {
		model := "m"
		if i%10 == 3 {
			model = "bad"
		} else {
			want = append(want, fmt.Sprintf("r-%06d", i))
		}
		f.s.Enqueue(rec(i, model))
	}
	f.waitStored(t, want)
	waitFor(t, "rejected counter", func() bool { return testutil.ToFloat64(f.s.m.rejected) == 10 })
	if got := testutil.ToFloat64(f.s.m.shipped); got != 90 {
		t.Fatalf("shipped %v, want 90", got)
	}
}

// Re-sent records are duplicates, not stored twice: a segment left by a
// crash after its records were acknowledged drains without duplicates.
func TestShipReplayAfterCrash(t *testing.T) {
	dir := t.TempDir()
	var seg bytes.Buffer
	for i := range 20 {
		seg.Write(rec(i, "m"))
		seg.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(firstSeq)), seg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The second segment has a corrupt line and a torn tail.
	seg.Reset()
	for i := 20; i < 30; i++ {
		seg.Write(rec(i, "m"))
		seg.WriteByte('\n')
	}
	seg.WriteString("{\"request_id\": garbage\n")
	seg.Write(rec(30, "m"))
	seg.WriteByte('\n')
	seg.Write(rec(31, "m")[:40])
	if err := os.WriteFile(filepath.Join(dir, segmentName(firstSeq+1)), seg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	// The first half of the first segment was acknowledged before the crash.
	r := newReceiver(t)
	for i := range 10 {
		r.Preload(fmt.Sprintf("r-%06d", i), rec(i, "m"))
	}
	f := newFixtureWith(t, r, dir, nil)
	f.enqueue(t, 100, 110)
	want := append(ids(0, 31), ids(100, 110)...)
	f.waitStored(t, want)
	waitFor(t, "duplicates counted", func() bool { return testutil.ToFloat64(f.s.m.duplicates) == 10 })
	if n := testutil.ToFloat64(f.s.m.dropped.WithLabelValues("corrupt")); n != 1 {
		t.Fatalf("corrupt lines %v, want 1", n)
	}
}

// A segment partly acknowledged before a failure resumes after the
// acknowledged lines: nothing is sent twice.
func TestShipSpillResumesMidSegment(t *testing.T) {
	dir := t.TempDir()
	var seg bytes.Buffer
	for i := range 120 {
		seg.Write(rec(i, "m"))
		seg.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(firstSeq)), seg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t)
	r.FailNext(0, 500, 503)
	f := newFixtureWith(t, r, dir, nil) // batches of 50
	f.waitStored(t, ids(0, 120))
	if d := r.Duplicates(); d != 0 {
		t.Fatalf("%d duplicates", d)
	}
	if n := r.Requests.Load(); n != 5 {
		t.Fatalf("%d requests, want 5 (3 chunks + 2 failures)", n)
	}
}

// No spill, server down: the queue fills and Enqueue drops without blocking.
func TestShipQueueFullDrops(t *testing.T) {
	f := newFixture(t, "", func(o *Options) { o.QueueSize = 100; o.BatchSize = 10 })
	f.r.Stop()
	accepted := 0
	for i := range 1000 {
		if f.s.Enqueue(rec(i, "m")) {
			accepted++
		}
	}
	if accepted == 1000 {
		t.Fatal("no record dropped with a full queue")
	}
	if d := testutil.ToFloat64(f.s.m.dropped.WithLabelValues("queue_full")); int(d) != 1000-accepted {
		t.Fatalf("dropped %v, want %d", d, 1000-accepted)
	}
	mustRestart(t, f.r)
	waitFor(t, "accepted records", func() bool { return len(f.r.Stored()) == accepted })
	got := f.r.Stored()
	if !slices.IsSorted(got) {
		t.Fatal("records out of order")
	}
}

// The spill's byte cap: beyond it records are dropped and counted.
func TestShipSpillCap(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, dir, func(o *Options) { o.SpillMaxBytes = 10 << 10 })
	f.r.Stop()
	f.enqueue(t, 0, 500)
	waitFor(t, "spill_full drops", func() bool {
		return testutil.ToFloat64(f.s.m.dropped.WithLabelValues("spill_full")) > 0
	})
	var total int64
	segs, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	for _, s := range segs {
		fi, _ := os.Stat(s)
		total += fi.Size()
	}
	if total > 10<<10 {
		t.Fatalf("spill holds %d bytes over the 10 KiB cap", total)
	}
}

// Close with the server down writes the in-flight records to the spill; a
// new Shipper ships them first, in order.
func TestShipCloseSpillsAndResumes(t *testing.T) {
	dir := t.TempDir()
	r := newReceiver(t)
	r.Stop()
	opts := Options{Server: r.URL(), Token: r.Token, SpillDir: dir, BatchSize: 7, FlushInterval: 10 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	for i := range 200 {
		s.Enqueue(rec(i, "m"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	mustRestart(t, r)
	s2, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s2.Start()
	for i := 200; i < 250; i++ {
		s2.Enqueue(rec(i, "m"))
	}
	waitFor(t, "all records", func() bool { return len(r.Stored()) >= 250 })
	if got := r.Stored(); !slices.Equal(got, ids(0, 250)) {
		t.Fatalf("order broken at %d", firstDiff(got, ids(0, 250)))
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s2.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestReadSegment(t *testing.T) {
	in := "{\"a\":1}\n\n{\"b\":2}\nnot json\n[1,2]\n{\"c\":" + strings.Repeat("1", 100) + "}\n{\"torn\":"
	lines, skipped, err := ReadSegment(strings.NewReader(in), 64)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, string(l))
	}
	if want := []string{`{"a":1}`, `{"b":2}`}; !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
	if skipped != 4 { // empty, not json, array, too long
		t.Fatalf("skipped %d, want 4", skipped)
	}
}

func FuzzReadSegment(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"b\":2}\n{\"c\""), 64)
	f.Add([]byte("\n\n\n"), 1)
	f.Add([]byte(strings.Repeat("x", 70000)+"\n{}\n"), 100000)
	f.Fuzz(func(t *testing.T, data []byte, maxLine int) {
		if maxLine < 0 || maxLine > 1<<20 {
			return
		}
		lines, _, err := ReadSegment(bytes.NewReader(data), maxLine)
		if err != nil {
			t.Fatal(err)
		}
		var again bytes.Buffer
		for _, l := range lines {
			if len(l) > maxLine || bytes.IndexByte(l, '\n') >= 0 || !validRecord(l) {
				t.Fatalf("bad line %q", l)
			}
			again.Write(l)
			again.WriteByte('\n')
		}
		// Round trip: the valid lines read back unchanged.
		lines2, skipped, _ := ReadSegment(&again, maxLine)
		if skipped != 0 || len(lines2) != len(lines) {
			t.Fatalf("round trip: %d lines, %d skipped; want %d", len(lines2), skipped, len(lines))
		}
		for i := range lines {
			if !bytes.Equal(lines[i], lines2[i]) {
				t.Fatalf("round trip line %d", i)
			}
		}
	})
}

func newReceiver(t *testing.T) *shiptest.Receiver {
	t.Helper()
	r, err := shiptest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func mustRestart(t *testing.T, r *shiptest.Receiver) {
	t.Helper()
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
