// Package callrecord is the record of a call that ended: one JSON
// document per call with the blocks it visited (times and branches),
// every transfer's numbers and outcome, how it ended and the processes
// that served it, a takeover included. The schema is versioned (Schema,
// Version) and documented in docs/observability.md. Records go to sinks
// (a Redis stream, a signed webhook) that never make a call wait: each
// has a bounded queue, and a record that finds it full is dropped and
// counted.
package callrecord

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/record"
)

// The schema's name and version. A change that renames or removes a
// field, or changes its meaning, takes a new version; added fields do
// not.
const (
	Schema  = "ariflow.call-record"
	Version = 1
)

// How a call ended (End.Reason).
const (
	EndDisconnected = "disconnected"  // the flow's Disconnect block
	EndCallerHangup = "caller-hangup" // the caller hung up
	EndHandedOff    = "handed-off"    // to an agent, a queue, or with the far end (resume off): left the app
	EndFallback     = "fallback"      // ariflow could not serve the caller: the fallback context, or the apology
	EndError        = "error"         // anything else
)

// Record is one call's record (schema version 1).
type Record struct {
	Schema      string    `json:"schema"`
	Version     int       `json:"schema_version"`
	CallID      string    `json:"call_id"`
	App         string    `json:"app,omitempty"`
	Channel     string    `json:"channel"`
	Caller      string    `json:"caller"`
	CallerName  string    `json:"caller_name,omitempty"`
	Dialed      string    `json:"dialed"`
	Flow        string    `json:"flow,omitempty"`
	FlowVersion string    `json:"flow_version,omitempty"`
	Digest      string    `json:"flow_digest,omitempty"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended"`
	DurationS   float64   `json:"duration_s"`
	End         End       `json:"end"`
	// Blocks are the blocks visited, oldest first; BlocksDropped counts
	// the oldest let go past record.MaxVisits.
	Blocks           []record.Visit           `json:"blocks"`
	BlocksDropped    int                      `json:"blocks_dropped,omitempty"`
	Transfers        []record.TransferOutcome `json:"transfers"`
	TransfersDropped int                      `json:"transfers_dropped,omitempty"`
	// Processes are the ariflow processes that served the call, in order;
	// Visit.By and the transfers' By index them.
	Processes []record.Served `json:"processes"`
	// TraceID is the call's trace, when it was traced.
	TraceID string `json:"trace_id,omitempty"`
	// Attributes are the flow's own attributes ($.Attributes) at the end.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// End is how the call ended.
type End struct {
	Reason string `json:"reason"`
	Block  string `json:"block,omitempty"` // the block it ended in
	Error  string `json:"error,omitempty"`
}

// Build makes the record of the call rec describes, ended at at.
func Build(rec *record.Call, app string, end End, at time.Time, traceID string) *Record {
	sys := rec.Attributes[flows.NSSystem]
	r := &Record{Schema: Schema, Version: Version, CallID: rec.CallID, App: app, Channel: rec.Channel,
		Caller: sys[flows.SysCallerNumber], CallerName: sys[flows.SysCallerName], Dialed: sys[flows.SysDialedNumber],
		Flow: rec.Flow, FlowVersion: rec.Version, Digest: rec.Digest, Started: rec.Started, Ended: at,
		DurationS: at.Sub(rec.Started).Seconds(), End: end, TraceID: traceID,
		Blocks: []record.Visit{}, Transfers: []record.TransferOutcome{}, Processes: []record.Served{}}
	if len(r.End.Error) > record.MaxError {
		r.End.Error = r.End.Error[:record.MaxError] + "…"
	}
	if h := rec.History; h != nil {
		r.Blocks = append(r.Blocks, h.Blocks...)
		r.Transfers = append(r.Transfers, h.Transfers...)
		r.Processes = append(r.Processes, h.Served...)
		r.BlocksDropped, r.TransfersDropped = h.BlocksDropped, h.TransfersDropped
	}
	if a := rec.Attributes[flows.NSAttributes]; len(a) > 0 {
		r.Attributes = make(map[string]string, len(a))
		for k, v := range a {
			r.Attributes[k] = v
		}
	}
	return r
}

// Sink receives records. Send never waits: it queues the record and
// tells whether it was queued. ctx carries the call's trace context for a
// sink that propagates it. The record is not changed after Send.
type Sink interface {
	Send(ctx context.Context, r *Record) bool
	// Close delivers what is queued within ctx and stops.
	Close(ctx context.Context) error
}

// Outcome is what became of one record at one sink.
type Outcome string

const (
	Sent    Outcome = "sent"
	Failed  Outcome = "failed"  // every attempt failed
	Dropped Outcome = "dropped" // the sink's queue was full, or it was closed
)

// Metrics count records by sink and outcome.
type Metrics struct {
	Records *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{Records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ariflow_call_records_total",
		Help: "Call records by sink and result: sent, failed after the retries, or dropped (queue full)."}, []string{"sink", "result"})}
	if reg != nil {
		reg.MustRegister(m.Records)
	}
	return m
}

// Counter returns the Result function of sink's records.
func (m *Metrics) Counter(sink string) func(Outcome) {
	if m == nil {
		return func(Outcome) {}
	}
	return func(o Outcome) { m.Records.WithLabelValues(sink, string(o)).Inc() }
}

// Multi sends each record to every sink.
type Multi []Sink

func (m Multi) Send(ctx context.Context, r *Record) bool {
	ok := true
	for _, s := range m {
		ok = s.Send(ctx, r) && ok
	}
	return ok
}

func (m Multi) Close(ctx context.Context) error {
	var first error
	for _, s := range m {
		if err := s.Close(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}
