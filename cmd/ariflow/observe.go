package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/callrecord"
	"github.com/ariflow/ariflow/internal/webhook"
	"github.com/ariflow/ariflow/observe"
)

// observeConfig is what `ariflow run` traces and records (see
// docs/observability.md). Tracing itself is configured by the standard
// OTEL_* variables.
type observeConfig struct {
	TraceNumbers      string // whole | masked | hashed
	TraceHashKeyFile  string
	TraceInviteHeader string
	Records           string // comma-separated sinks: redis, webhook
	RecordsStream     string
	RecordsMaxLen     int64
	RecordsWebhook    string

	traceHashKey  string
	recordsMaxLen string
}

func (c *config) observeFlags(fs *flag.FlagSet) {
	o := &c.observeConfig
	fs.StringVar(&o.TraceNumbers, "trace-numbers", envDefault("ARIFLOW_TRACE_NUMBERS", "masked"), "phone numbers in trace spans: whole, masked or hashed ($ARIFLOW_TRACE_NUMBERS); tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT is set")
	fs.StringVar(&o.TraceHashKeyFile, "trace-hash-key-file", envDefault("ARIFLOW_TRACE_HASH_KEY_FILE", ""), "file with the key of -trace-numbers hashed, at least 16 bytes ($ARIFLOW_TRACE_HASH_KEY_FILE)")
	fs.StringVar(&o.TraceInviteHeader, "trace-invite-header", envDefault("ARIFLOW_TRACE_INVITE_HEADER", "traceparent"), "SIP header of the caller's INVITE whose W3C traceparent a traced call continues ($ARIFLOW_TRACE_INVITE_HEADER)")
	fs.StringVar(&o.Records, "records", envDefault("ARIFLOW_RECORDS", ""), "where call records go: redis, webhook or both, comma-separated; empty: none ($ARIFLOW_RECORDS)")
	fs.StringVar(&o.RecordsStream, "records-stream", envDefault("ARIFLOW_RECORDS_STREAM", callrecord.DefaultStream), "Redis stream of the call records ($ARIFLOW_RECORDS_STREAM)")
	o.recordsMaxLen = envDefault("ARIFLOW_RECORDS_MAXLEN", "100000")
	fs.Func("records-maxlen", "records the stream keeps, about (XADD MAXLEN ~) ($ARIFLOW_RECORDS_MAXLEN; default 100000)", func(v string) error { o.recordsMaxLen = v; return nil })
	fs.StringVar(&o.RecordsWebhook, "records-webhook", envDefault("ARIFLOW_RECORDS_WEBHOOK", ""), "URL that receives each call record as a signed POST, with -records webhook ($ARIFLOW_RECORDS_WEBHOOK)")
}

var headerNameRE = func(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// loadObserve checks the settings and reads the hash key.
func (c *config) loadObserve() error {
	o := &c.observeConfig
	var errs []error
	mode, err := observe.ParseNumberMode(o.TraceNumbers)
	if err != nil {
		errs = append(errs, fmt.Errorf("-trace-numbers: %w", err))
	}
	if o.TraceHashKeyFile != "" {
		b, err := os.ReadFile(o.TraceHashKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("-trace-hash-key-file: %w", err))
		}
		o.traceHashKey = strings.TrimRight(string(b), "\r\n")
	}
	if mode == observe.NumbersHashed && len(o.traceHashKey) < observe.MinHashKey {
		errs = append(errs, fmt.Errorf("-trace-numbers hashed needs -trace-hash-key-file with a key of at least %d bytes", observe.MinHashKey))
	}
	if !headerNameRE(o.TraceInviteHeader) {
		errs = append(errs, fmt.Errorf("-trace-invite-header %q is not a SIP header name", o.TraceInviteHeader))
	}
	if _, err := observe.Enabled(nil); err != nil {
		errs = append(errs, err)
	}
	n, err := strconv.ParseInt(o.recordsMaxLen, 10, 64)
	if err != nil || n < 1 {
		errs = append(errs, fmt.Errorf("-records-maxlen %q: want a positive number", o.recordsMaxLen))
	}
	o.RecordsMaxLen = n
	sinks, err := o.sinks()
	if err != nil {
		errs = append(errs, err)
	}
	if sinks["webhook"] {
		if u, err := url.Parse(o.RecordsWebhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("-records webhook needs -records-webhook http(s)://host/path, got %q", webhook.RedactURL(o.RecordsWebhook)))
		}
	} else if o.RecordsWebhook != "" {
		errs = append(errs, errors.New("-records-webhook is set but -records does not name webhook"))
	}
	if sinks["redis"] && (o.RecordsStream == "" || strings.ContainsAny(o.RecordsStream, " \t\n")) {
		errs = append(errs, fmt.Errorf("-records-stream %q is not a Redis key", o.RecordsStream))
	}
	return errors.Join(errs...)
}

// sinks reads -records.
func (o *observeConfig) sinks() (map[string]bool, error) {
	out := map[string]bool{}
	for _, s := range strings.Split(o.Records, ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case "redis", "webhook":
			out[s] = true
		default:
			return nil, fmt.Errorf("-records: unknown sink %q (redis, webhook)", s)
		}
	}
	return out, nil
}

// newTracer is the process's tracer, nil when OTEL_* does not ask for
// one. Export errors are counted in reg and logged.
func newTracer(ctx context.Context, cfg *config, log *logrus.Logger, reg prometheus.Registerer) (*observe.Tracer, error) {
	failures := prometheus.NewCounter(prometheus.CounterOpts{Name: "ariflow_trace_export_errors_total",
		Help: "Errors of the trace exporter (spans not delivered to the OTLP endpoint)."})
	reg.MustRegister(failures)
	host, _ := os.Hostname()
	mode, _ := observe.ParseNumberMode(cfg.TraceNumbers) // checked by loadObserve
	t, err := observe.New(ctx, observe.Options{Numbers: mode, HashKey: []byte(cfg.traceHashKey),
		Instance: fmt.Sprintf("%s-%d", host, os.Getpid()),
		OnError: func(err error) {
			failures.Inc()
			log.WithError(err).Warn("trace export failed")
		}})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if t != nil {
		log.WithField("numbers", mode).Info("tracing calls (OTLP)")
	}
	return t, nil
}

// newRecords is the process's call record sinks (nil: none), counted in reg.
func newRecords(cfg *config, rdb redis.UniversalClient, web *webhook.Client, reg prometheus.Registerer, log *logrus.Logger) callrecord.Sink {
	m := callrecord.NewMetrics(reg)
	sinks, _ := cfg.sinks() // checked by loadObserve
	var out callrecord.Multi
	if sinks["redis"] {
		out = append(out, callrecord.NewRedisStream(rdb, callrecord.RedisOptions{Key: cfg.RecordsStream, MaxLen: cfg.RecordsMaxLen,
			Result: m.Counter("redis"), Log: log}))
	}
	if sinks["webhook"] {
		out = append(out, callrecord.NewWebhook(web, cfg.RecordsWebhook, m.Counter("webhook"), log))
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

// closeObserve delivers the records and spans still queued, within a
// bound, once the calls are over.
func closeObserve(t *observe.Tracer, records callrecord.Sink, log *logrus.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if records != nil {
		if err := records.Close(ctx); err != nil {
			log.WithError(err).Warn("call records still queued at exit were dropped")
		}
	}
	if err := t.Shutdown(ctx); err != nil {
		log.WithError(err).Warn("spans still queued at exit were dropped")
	}
}
