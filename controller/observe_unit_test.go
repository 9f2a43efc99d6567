package controller

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ariflow/ariflow/callrecord"
	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/observe"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// recordSink keeps the records a process sends.
type recordSink struct {
	mu   sync.Mutex
	recs []*callrecord.Record
	got  chan struct{}
}

func newRecordSink() *recordSink { return &recordSink{got: make(chan struct{}, 16)} }

func (s *recordSink) Send(_ context.Context, r *callrecord.Record) bool {
	s.mu.Lock()
	s.recs = append(s.recs, r)
	s.mu.Unlock()
	s.got <- struct{}{}
	return true
}
func (s *recordSink) Close(context.Context) error { return nil }

func (s *recordSink) wait(t *testing.T) *callrecord.Record {
	t.Helper()
	select {
	case <-s.got:
	case <-time.After(wait):
		t.Fatal("no call record")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recs[len(s.recs)-1]
}

// observed is a harness option: an in-memory tracer and a record sink.
func observed(t *testing.T) (*tracetest.InMemoryExporter, *recordSink, func(*Config)) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := observe.New(context.Background(), observe.Options{Exporter: exp, Syncer: true, Numbers: observe.NumbersWhole})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	sink := newRecordSink()
	return exp, sink, func(c *Config) { c.Tracer, c.Records = tr, sink }
}

// spanTree maps each span's name to its parent's name (the first of each
// name), and says which trace each is in.
func spanTree(spans tracetest.SpanStubs) (parent map[string]string, traces map[string]bool) {
	names := map[string]string{}
	for _, s := range spans {
		names[s.SpanContext.SpanID().String()] = s.Name
	}
	parent, traces = map[string]string{}, map[string]bool{}
	for _, s := range spans {
		if _, ok := parent[s.Name]; !ok {
			parent[s.Name] = names[s.Parent.SpanID().String()]
		}
		traces[s.SpanContext.TraceID().String()] = true
	}
	return parent, traces
}

const callerTP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// A traced call continues the caller's trace (its INVITE's traceparent),
// makes the documented span tree, puts its traceparent on the far end's
// INVITE when the block asks, and ends in one call record with the blocks,
// the transfer and how it ended.
func TestTracedCallAndRecord(t *testing.T) {
	t.Parallel()
	exp, sink, opt := observed(t)
	flow := xferYAML("traced", "    trace_header: X-Traceparent\n"+resumeOn)
	h := newHarness(t, []string{flow}, opt)
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == "GET" && r.Path == "/channels/c1/variable" && r.Query.Get("variable") == "PJSIP_HEADER(read,traceparent)" {
			return 200, `{"value":"` + callerTP + `"}`, 0, true
		}
		return 0, "", 0, false
	})
	h.start()
	h.caller("c1", "traced")
	leg, _ := h.leg()
	var body struct {
		Variables map[string]string `json:"variables"`
	}
	for _, r := range h.fake.Requests() {
		if r.Method == "POST" && r.Path == "/channels/create" {
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
		}
	}
	invite := body.Variables["PJSIP_HEADER(add,X-Traceparent)"]
	if !strings.HasPrefix(invite, "00-0af7651916cd43dd8448eb211c80319c-") {
		t.Errorf("the far end's INVITE carries X-Traceparent %q, not the caller's trace", invite)
	}
	h.fake.Answer(leg)
	h.answered("POST", "/bridges/")
	h.fake.Hangup(leg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
	r := sink.wait(t)

	parent, traces := spanTree(exp.GetSpans())
	if len(traces) != 1 || !traces["0af7651916cd43dd8448eb211c80319c"] {
		t.Errorf("traces %v, want only the caller's", traces)
	}
	for child, want := range map[string]string{"call": "", "TransferToPhoneNumber": "call", "PlayPrompt": "call", "Disconnect": "call",
		"transfer.dialing": "TransferToPhoneNumber", "transfer.bridged": "TransferToPhoneNumber", "transfer.ended": "TransferToPhoneNumber"} {
		if got, ok := parent[child]; !ok || got != want {
			t.Errorf("span %s: parent %q (present %v), want %q", child, got, ok, want)
		}
	}
	var dialing string
	for _, s := range exp.GetSpans() {
		if s.Name == "transfer.dialing" {
			dialing = observe.Traceparent(s.SpanContext)
		}
	}
	if invite != dialing {
		t.Errorf("INVITE's traceparent %q is not the dialing phase's %q", invite, dialing)
	}

	if r.CallID != "c1" || r.Caller != "+4917612345678" || r.End.Reason != callrecord.EndDisconnected || r.TraceID != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("record %+v", r)
	}
	var visits []string
	for _, v := range r.Blocks {
		visits = append(visits, v.Block+":"+v.Branch)
	}
	if strings.Join(visits, " ") != "xfer:Success ok:Next bye:" {
		t.Errorf("blocks %q", visits)
	}
	if len(r.Transfers) != 1 || r.Transfers[0].Outcome != "success" || r.Transfers[0].EndedBy != "far-end" ||
		len(r.Transfers[0].Numbers) != 1 || r.Transfers[0].Numbers[0].Number != "+4930123456" || r.Transfers[0].End.IsZero() {
		t.Errorf("transfers %+v", r.Transfers)
	}
	if len(r.Processes) != 1 || r.Processes[0].Owner != h.app.Owner() {
		t.Errorf("processes %+v", r.Processes)
	}
}

// A call taken over continues the trace the record names, and its record
// tells both processes and the transfer across them.
func TestAdoptedCallContinuesTraceAndHistory(t *testing.T) {
	t.Parallel()
	exp, sink, opt := observed(t)
	h := newHarness(t, xferFlows, opt)
	h.pbx("bridged")
	rec := adoptRecord(record.PhaseBridged, "xfer", "", 0)
	rec.Transfer.State, rec.Transfer.Attempt = record.StateBridged, 1
	rec.Trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	rec.History = &record.History{}
	rec.History.Serve("dead-process", 1, rec.Started, false)
	rec.History.Visit("xfer", "xfer", "TransferToPhoneNumber", rec.Started)
	rec.History.Transfer("xfer", false, rec.Started)
	h.store.put(rec)
	h.start()
	h.req("GET", "/bridges/"+adBr) // who is in the bridge: both, nothing to add
	h.answered("GET", "/bridges/"+adBr)
	h.fake.Hangup(adLeg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
	r := sink.wait(t)
	var call tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("span %s in trace %s, not the record's", s.Name, s.SpanContext.TraceID())
		}
		if s.Name == "call" {
			call = s
		}
	}
	if call.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("the adopter's call span's parent is %s, want the record's span", call.Parent.SpanID())
	}
	parent, _ := spanTree(exp.GetSpans())
	if parent["transfer.bridged"] != "TransferToPhoneNumber" || parent["TransferToPhoneNumber"] != "call" {
		t.Errorf("tree %v", parent)
	}
	if len(r.Processes) != 2 || r.Processes[0].Owner != "dead-process" || !r.Processes[1].Adopted || r.Processes[1].Owner != h.app.Owner() {
		t.Errorf("processes %+v", r.Processes)
	}
	if len(r.Blocks) < 2 || r.Blocks[0].Block != "xfer" || r.Blocks[0].Branch != "Success" || r.Blocks[0].By != 0 {
		t.Errorf("blocks %+v", r.Blocks)
	}
	if len(r.Transfers) != 1 || r.Transfers[0].Outcome != "success" || len(r.Transfers[0].Numbers) != 1 || r.Transfers[0].Numbers[0].By != 1 {
		t.Errorf("transfers %+v", r.Transfers)
	}
	if r.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("record's trace %q", r.TraceID)
	}
}

// A call with a failed transfer and a caller hangup: the record says so.
func TestRecordOfFailedTransferAndHangup(t *testing.T) {
	t.Parallel()
	_, sink, opt := observed(t)
	h := run(t, xferFlows, opt)
	h.caller("c1", "xfer")
	leg, _ := h.leg()
	h.fake.DialStatus(leg, "BUSY")
	h.fake.Hangup(leg, 17)
	h.wantPlayed("c1", mFailed)
	h.fake.Hangup("c1", 16)
	r := sink.wait(t)
	if r.End.Reason != callrecord.EndCallerHangup || r.End.Block != "failed" {
		t.Errorf("end %+v", r.End)
	}
	if len(r.Transfers) != 1 || r.Transfers[0].Outcome != "call-failed" || r.Transfers[0].Cause != 17 {
		t.Errorf("transfers %+v", r.Transfers)
	}
}

// Neither tracing nor records: no history, no trace, no variable
// request; the resume latency is measured all the same.
func TestUnobservedCallCostsNothing(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "xfer")
	leg, _ := h.leg()
	rec, err := h.store.Load(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.History != nil || rec.Trace != "" {
		t.Errorf("record keeps history %v trace %q", rec.History, rec.Trace)
	}
	h.fake.Answer(leg)
	h.answered("POST", "/bridges/")
	h.fake.Hangup(leg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
	if n := h.count("GET", "/channels/c1/variable"); n != 0 {
		t.Errorf("%d variable requests without tracing", n)
	}
	var m dto.Metric
	if err := h.app.metrics.ResumeSeconds.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("%d resumes measured, want 1", n)
	}
}

// Tracing alone, and records alone: each works without the other.
func TestTraceOrRecordAlone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		trace, record bool
	}{{"trace only", true, false}, {"records only", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			exp, sink, opt := observed(t)
			h := run(t, xferFlows, func(c *Config) {
				opt(c)
				if !tc.trace {
					c.Tracer = nil
				}
				if !tc.record {
					c.Records = nil
				}
			})
			h.caller("c1", "xfer")
			leg, _ := h.leg()
			rec, err := h.store.Load(context.Background(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			if (rec.Trace != "") != tc.trace || (rec.History != nil) != tc.record {
				t.Errorf("record keeps trace %q, history %v", rec.Trace, rec.History != nil)
			}
			h.fake.Hangup(leg, 17)
			h.wantPlayed("c1", mFailed)
			h.fake.Hangup("c1", 16)
			h.ended("c1")
			if tc.record {
				if r := sink.wait(t); r.End.Reason != callrecord.EndCallerHangup || r.TraceID != "" {
					t.Errorf("record %+v", r)
				}
			}
			if n := len(exp.GetSpans()); (n > 0) != tc.trace {
				t.Errorf("%d spans", n)
			}
		})
	}
}
