package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/fileutil"
	"github.com/custody-ml/custody/internal/proxy"
	"github.com/custody-ml/custody/internal/ship"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

func init() { register(newProxyCommand) }

type proxyOptions struct {
	clientOptions
	Listen        string
	AddrFile      string
	Upstream      string
	Model         string
	Spill         string
	SpillMax      int64
	Mapping       string
	Queue         int
	Batch         int
	Flush         time.Duration
	CaptureMax    int64
	MetricsListen string
	LogFormat     string
	Shutdown      time.Duration
}

func (o *proxyOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	o.clientOptions.AddFlags(f)
	d := ship.DefaultOptions()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8421", "address to serve on (port 0 picks a free port)")
	f.StringVar(&o.AddrFile, "addr-file", "", "write the address actually listened on to this file once serving")
	f.StringVar(&o.Upstream, "upstream", "", "the model server's base URL (required)")
	f.StringVar(&o.Model, "model", "", "the served model, NAME@sha256:<64 hex> (required)")
	f.StringVar(&o.Spill, "spill", "", "spill records to this directory while the custody server is unreachable")
	f.Int64Var(&o.SpillMax, "spill-max", d.SpillMaxBytes, "cap on the spill directory, bytes")
	f.StringVar(&o.Mapping, "mapping", "", "JSON-pointer mapping file for non-KServe bodies (docs/proxy.md)")
	f.IntVar(&o.Queue, "queue", d.QueueSize, "records held in memory before spilling or dropping")
	f.IntVar(&o.Batch, "batch", d.BatchSize, "records per ingest request")
	f.DurationVar(&o.Flush, "flush", d.FlushInterval, "send a partial batch after this long")
	f.Int64Var(&o.CaptureMax, "capture-max", proxy.DefaultCaptureMax, "bodies larger than this (bytes) are forwarded but not recorded")
	f.StringVar(&o.MetricsListen, "metrics-listen", "", "serve Prometheus metrics at /metrics on this separate address")
	f.StringVar(&o.LogFormat, "log-format", "json", "log format: json or text")
	f.DurationVar(&o.Shutdown, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, time allowed for in-flight requests and shipping queued records")
}

func newProxyCommand() *cobra.Command {
	var opts proxyOptions
	cmd := &cobra.Command{
		Use:   "proxy --listen ADDR --upstream URL --model NAME@sha256:HEX [--server URL] [--spill DIR]",
		Short: "Run the prediction-logging sidecar in front of a model server",
		Long: `Forward every request to the model server unchanged, add X-Request-Id and
X-Model-Sha256 to responses, extract features and predictions from JSON
inference calls (KServe v2 / Open Inference Protocol, or --mapping) and ship
them to the custody server (--server or $CUSTODY_SERVER, token from --token
or $CUSTODY_TOKEN, role ingester) in the background. Logging never fails or
delays a request: records wait in a bounded queue, spill to --spill DIR while
the server is unreachable and drain in order when it returns. See
docs/proxy.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProxy(cmd.Context(), cmd.ErrOrStderr(), opts)
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

// parseModelRef splits NAME@sha256:HEX.
func parseModelRef(s string) (name, digest string, err error) {
	name, digest, ok := strings.Cut(s, "@")
	hexPart, isSHA := strings.CutPrefix(digest, "sha256:")
	if !ok || name == "" || !isSHA || len(hexPart) != 64 {
		return "", "", usagef("--model %q: want NAME@sha256:<64 hex>", s)
	}
	if _, err := hex.DecodeString(hexPart); err != nil || strings.ToLower(hexPart) != hexPart {
		return "", "", usagef("--model %q: the digest must be 64 lowercase hex digits", s)
	}
	return name, digest, nil
}

func runProxy(ctx context.Context, stderr io.Writer, opts proxyOptions) error {
	log, err := newLogger(stderr, opts.LogFormat)
	if err != nil {
		return err
	}
	setProxyGC()
	if opts.Upstream == "" || opts.Model == "" {
		return usagef("--upstream and --model are required")
	}
	up, err := url.Parse(opts.Upstream)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return usagef("--upstream %q: want http(s)://host[:port]", opts.Upstream)
	}
	name, digest, err := parseModelRef(opts.Model)
	if err != nil {
		return err
	}
	server, token := opts.Server, opts.Token
	if server == "" {
		server = os.Getenv("CUSTODY_SERVER")
	}
	if token == "" {
		token = os.Getenv("CUSTODY_TOKEN")
	}
	if server == "" {
		return usagef("say where records go: --server URL or $CUSTODY_SERVER")
	}
	if token == "" {
		log.Warn("no token (--token or $CUSTODY_TOKEN): the server will refuse the records, which wait in the queue and the spill directory")
	}
	var mapping *proxy.Mapping
	if opts.Mapping != "" {
		if mapping, err = proxy.LoadMapping(opts.Mapping); err != nil {
			return usagef("--mapping: %v", err)
		}
	}
	if opts.Queue <= 0 || opts.Batch <= 0 || opts.Flush <= 0 || opts.SpillMax <= 0 || opts.CaptureMax <= 0 {
		return usagef("--queue, --batch, --flush, --spill-max and --capture-max must be positive")
	}

	// Bounded labels: the model name and the digest's 16-hex prefix.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	labeled := prometheus.WrapRegistererWith(prometheus.Labels{"model": name, "model_sha256": digest[7:23]}, reg)

	so := ship.DefaultOptions()
	so.Server, so.Token = server, token
	so.QueueSize, so.BatchSize, so.FlushInterval = opts.Queue, opts.Batch, opts.Flush
	so.SpillDir, so.SpillMaxBytes = opts.Spill, opts.SpillMax
	so.Logger, so.Registerer = log, labeled
	shipper, err := ship.New(so)
	if err != nil {
		return usagef("%v", err)
	}
	p, err := proxy.New(proxy.Options{
		Upstream: up, Model: name, ModelDigest: digest, Mapping: mapping, CaptureMax: opts.CaptureMax,
		Sink: shipper, Registerer: labeled, Logger: log,
	})
	if err != nil {
		return usagef("%v", err)
	}

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return err
	}
	var mln net.Listener
	if opts.MetricsListen != "" {
		if mln, err = net.Listen("tcp", opts.MetricsListen); err != nil {
			ln.Close()
			return err
		}
	}
	shipper.Start()
	addr := ln.Addr().String()
	if opts.AddrFile != "" {
		if err := fileutil.WriteFileAtomic(opts.AddrFile, []byte(addr+"\n"), 0o644); err != nil {
			ln.Close()
			return err
		}
	}
	if mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
		log.Info("metrics", "addr", mln.Addr().String())
	}
	log.Info("proxying", "addr", addr, "upstream", up.String(), "model", name, "model_sha256", digest,
		"server", server, "spill", opts.Spill, "mapping", opts.Mapping != "")
	serveErr := proxy.ListenAndServe(ctx, ln, p, opts.Shutdown)
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	p.Close() // extract what the last requests left
	// Ship what is queued; what is left goes to the spill directory.
	sctx, cancel := context.WithTimeout(context.Background(), opts.Shutdown)
	defer cancel()
	if err := shipper.Close(sctx); err != nil {
		log.Error("closing the shipper", "error", err)
	}
	log.Info("stopped")
	if serveErr != nil {
		return fmt.Errorf("proxy: %w", serveErr)
	}
	return nil
}

// proxyGCPercent is the proxy's garbage-collection target unless GOGC is
// set. The proxy's live heap is small and bounded (the record queue, the
// capture buffers in flight), so letting it grow to 5x between cycles costs
// little memory, and collections compete with requests for the CPU less
// often: on the 2-core benchmark machine the p99 overhead at 1,000 req/s
// was 0.99-2.31 ms with GOGC=100 and 0.94-1.32 ms with this (docs/proxy.md,
// "Speed and benchmark").
const proxyGCPercent = 400

func setProxyGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(proxyGCPercent)
	}
}
