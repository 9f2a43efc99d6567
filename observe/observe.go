// Package observe traces calls with OpenTelemetry: a span per call, a
// child span per block and, under a transfer block, one per transfer
// phase (dialing, ringing, screening, bridged, ended). Tracing is
// configured by the standard OTEL_* environment variables and is off
// unless they ask for it: a nil *Tracer is off, and every method of it and
// of a zero Span returns at once, so a process without tracing pays a nil
// check per hook and nothing more.
//
// Spans are exported over OTLP/HTTP (protobuf) in batches; the W3C trace
// context (traceparent) is the propagation format.
package observe

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// NumberMode is how phone numbers appear in span attributes: traces often
// leave the operator's hands (a hosted backend), numbers are personal data.
type NumberMode string

const (
	NumbersWhole  NumberMode = "whole"  // as dialled: +4917612345678
	NumbersMasked NumberMode = "masked" // country and last digits: +491*******678
	NumbersHashed NumberMode = "hashed" // keyed hash: h:3f9a…, equal for equal numbers
)

// ParseNumberMode reads a NumberMode ("" is masked).
func ParseNumberMode(s string) (NumberMode, error) {
	switch m := NumberMode(s); m {
	case "":
		return NumbersMasked, nil
	case NumbersWhole, NumbersMasked, NumbersHashed:
		return m, nil
	}
	return "", fmt.Errorf("number mode %q: use whole, masked or hashed", s)
}

// MinHashKey is the shortest key NumbersHashed accepts: an unkeyed or
// short-keyed hash of a phone number is undone by trying every number.
const MinHashKey = 16

// Options configure New; zero fields take the defaults.
type Options struct {
	// Numbers is how numbers appear in spans (default masked).
	Numbers NumberMode
	// HashKey keys the hash of NumbersHashed (at least MinHashKey bytes).
	HashKey []byte
	// Instance names this process (service.instance.id), e.g. the
	// lease owner.
	Instance string
	// Version is ariflow's version (service.version), if known.
	Version string
	// LookupEnv reads the environment (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Exporter, when set, replaces the OTLP exporter and turns tracing on
	// whatever the environment says (tests).
	Exporter sdktrace.SpanExporter
	// Syncer exports each span as it ends instead of in batches (tests).
	Syncer bool
	// OnError is told of the SDK's errors (an export that failed); the
	// caller counts and logs them.
	OnError func(error)
}

// Tracer makes the spans of calls. A nil Tracer is tracing off.
type Tracer struct {
	tp      *sdktrace.TracerProvider
	tr      trace.Tracer
	numbers NumberMode
	key     []byte
}

// ErrUnsupported is a configuration the environment asks for that this
// build does not provide.
var ErrUnsupported = errors.New("unsupported tracing configuration")

// Enabled tells whether the environment asks for traces: an OTLP endpoint
// is set (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
// or OTEL_TRACES_EXPORTER=otlp, and neither OTEL_SDK_DISABLED=true nor
// OTEL_TRACES_EXPORTER=none says otherwise.
func Enabled(lookup func(string) (string, bool)) (bool, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return false, nil
	}
	exp := strings.ToLower(get("OTEL_TRACES_EXPORTER"))
	switch exp {
	case "none":
		return false, nil
	case "", "otlp":
	default:
		return false, fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%s: only otlp (or none) is supported", ErrUnsupported, exp)
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		switch p := get(k); p {
		case "", "http/protobuf":
		default:
			return false, fmt.Errorf("%w: %s=%s: this build exports over http/protobuf only (port 4318)", ErrUnsupported, k, p)
		}
		if get(k) != "" {
			break // the traces-specific setting wins
		}
	}
	return exp == "otlp" || get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
}

// New returns the Tracer the environment asks for, or nil when tracing is
// off. The OTLP exporter, the sampler (OTEL_TRACES_SAMPLER), the batch
// processor (OTEL_BSP_*) and the resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES) read their own OTEL_* variables.
func New(ctx context.Context, o Options) (*Tracer, error) {
	if o.Numbers == "" {
		o.Numbers = NumbersMasked
	}
	if _, err := ParseNumberMode(string(o.Numbers)); err != nil {
		return nil, err
	}
	if o.Numbers == NumbersHashed && len(o.HashKey) < MinHashKey {
		return nil, fmt.Errorf("hashed numbers need a key of at least %d bytes (-trace-hash-key-file)", MinHashKey)
	}
	exp := o.Exporter
	if exp == nil {
		on, err := Enabled(o.LookupEnv)
		if err != nil || !on {
			return nil, err
		}
		if exp, err = otlptracehttp.New(ctx); err != nil {
			return nil, fmt.Errorf("OTLP exporter: %w", err)
		}
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", "ariflow")}
	if o.Instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", o.Instance))
	}
	if o.Version != "" {
		attrs = append(attrs, attribute.String("service.version", o.Version))
	}
	// Later options win: the environment's names over ours.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	proc := sdktrace.WithBatcher(exp)
	if o.Syncer {
		proc = sdktrace.WithSyncer(exp)
	}
	tp := sdktrace.NewTracerProvider(proc, sdktrace.WithResource(res))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	if o.OnError != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(o.OnError))
	}
	return &Tracer{tp: tp, tr: tp.Tracer("github.com/ariflow/ariflow"), numbers: o.Numbers, key: o.HashKey}, nil
}

// Enabled reports whether t makes spans.
func (t *Tracer) Enabled() bool { return t != nil }

// Shutdown exports the spans still queued and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// ForceFlush exports the spans ended so far.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// Number is a phone number as spans carry it (Options.Numbers).
func (t *Tracer) Number(n string) string {
	if t == nil || n == "" {
		return ""
	}
	return FormatNumber(t.numbers, t.key, n)
}

// FormatNumber writes n in mode m; key keys NumbersHashed.
func FormatNumber(m NumberMode, key []byte, n string) string {
	switch m {
	case NumbersWhole:
		return n
	case NumbersHashed:
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(n))
		return "h:" + hex.EncodeToString(mac.Sum(nil))[:16]
	default:
		return Mask(n)
	}
}

// Mask keeps a number's first three digits (with a leading '+') and its
// last three, and stars the rest: enough to tell a country and a line
// apart, not to dial. Numbers of six digits or fewer keep only their last
// two.
func Mask(n string) string {
	b := []byte(n)
	digits := 0
	for _, c := range b {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	head, tail := 3, 3
	if digits <= 6 {
		head, tail = 0, 2
	}
	seen := 0
	for i, c := range b {
		if c < '0' || c > '9' {
			continue
		}
		seen++
		if seen > head && seen <= digits-tail {
			b[i] = '*'
		}
	}
	return string(b)
}

// Span is one span; the zero Span records nothing.
type Span struct{ s trace.Span }

// Recording reports whether the span records (tracing is on).
func (s Span) Recording() bool { return s.s != nil }

// End ends the span now.
func (s Span) End() {
	if s.s != nil {
		s.s.End()
	}
}

// SetError marks the span failed with err.
func (s Span) SetError(err error) {
	if s.s != nil && err != nil {
		s.s.SetStatus(codes.Error, err.Error())
	}
}

// Set adds attributes.
func (s Span) Set(kv ...attribute.KeyValue) {
	if s.s != nil {
		s.s.SetAttributes(kv...)
	}
}

// Event adds an event with attributes.
func (s Span) Event(name string, kv ...attribute.KeyValue) {
	if s.s != nil {
		s.s.AddEvent(name, trace.WithAttributes(kv...))
	}
}

// SpanContext is the span's identity (invalid for the zero Span).
func (s Span) SpanContext() trace.SpanContext {
	if s.s == nil {
		return trace.SpanContext{}
	}
	return s.s.SpanContext()
}

// TraceID is the span's trace ID in hex ("" for the zero Span).
func (s Span) TraceID() string {
	if sc := s.SpanContext(); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// Traceparent is the span as a W3C traceparent header value ("" for the
// zero Span): what a request made within it carries.
func (s Span) Traceparent() string {
	return Traceparent(s.SpanContext())
}

// Context returns ctx carrying the span, for requests that propagate it
// (webhook.Client.Post injects it as traceparent).
func (s Span) Context(ctx context.Context) context.Context {
	if s.s == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, s.s)
}

// Traceparent formats a span context as a W3C traceparent value.
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// ParseTraceparent reads a W3C traceparent value (version 00, or a later
// version read as 00 as the specification asks); ok is false for anything
// else, which is then ignored (a caller's malformed header must never
// fail a call).
func ParseTraceparent(v string) (trace.SpanContext, bool) {
	v = strings.TrimSpace(v)
	if len(v) < 55 {
		return trace.SpanContext{}, false
	}
	ver := v[:2]
	if ver == "ff" || (ver == "00" && len(v) != 55) || (len(v) > 55 && v[55] != '-') {
		return trace.SpanContext{}, false
	}
	if v[2] != '-' || v[35] != '-' || v[52] != '-' || strings.ToLower(v) != v {
		return trace.SpanContext{}, false
	}
	tid, err := trace.TraceIDFromHex(v[3:35])
	if err != nil {
		return trace.SpanContext{}, false
	}
	sid, err := trace.SpanIDFromHex(v[36:52])
	if err != nil {
		return trace.SpanContext{}, false
	}
	flags, err := hex.DecodeString(v[53:55])
	if err != nil {
		return trace.SpanContext{}, false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid,
		TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true})
	return sc, sc.IsValid()
}

// start starts a span under parent (a span context; invalid: a root).
func (t *Tracer) start(parent trace.SpanContext, name string, at time.Time, kind trace.SpanKind, kv ...attribute.KeyValue) Span {
	ctx := context.Background()
	if parent.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, parent)
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(kv...)}
	if !at.IsZero() {
		opts = append(opts, trace.WithTimestamp(at))
	}
	_, s := t.tr.Start(ctx, name, opts...)
	return Span{s}
}
