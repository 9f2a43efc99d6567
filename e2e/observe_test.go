package e2e

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ariflow/ariflow/callrecord"
)

// The observability tests run ariflow processes of their own (Stasis app
// ariflow-sec, which the PBX enters for +4930556XXX) with tracing on,
// exporting to an OTLP/HTTP receiver inside the test, and call records
// going to a Redis stream of their own.

// otlpSpan is a span as the receiver got it.
type otlpSpan struct {
	Trace, ID, Parent, Name, Instance string
	Attrs                             map[string]string
}

// otlpReceiver is an OTLP/HTTP trace receiver (POST /v1/traces,
// protobuf), on loopback.
type otlpReceiver struct {
	srv     *http.Server
	ln      net.Listener
	mu      sync.Mutex
	spans   []otlpSpan
	changed chan struct{}
}

func startOTLP(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &otlpReceiver{ln: ln, changed: make(chan struct{})}
	o.srv = &http.Server{Handler: http.HandlerFunc(o.serve)}
	go func() { _ = o.srv.Serve(ln) }()
	t.Cleanup(func() { o.srv.Close() })
	return o
}

func (o *otlpReceiver) Endpoint() string { return "http://" + o.ln.Addr().String() }

func (o *otlpReceiver) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		z, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = z
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []otlpSpan
	for _, rs := range req.ResourceSpans {
		inst := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.instance.id" {
				inst = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := otlpSpan{Trace: hex.EncodeToString(s.TraceId), ID: hex.EncodeToString(s.SpanId),
					Parent: hex.EncodeToString(s.ParentSpanId), Name: s.Name, Instance: inst, Attrs: map[string]string{}}
				for _, kv := range s.Attributes {
					v := kv.GetValue()
					switch {
					case v.GetStringValue() != "":
						sp.Attrs[kv.Key] = v.GetStringValue()
					default:
						sp.Attrs[kv.Key] = fmt.Sprint(v.GetIntValue())
					}
				}
				got = append(got, sp)
			}
		}
	}
	o.mu.Lock()
	o.spans = append(o.spans, got...)
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil)
}

// waitSpans waits until a span of trace has name (and, if set, attribute
// key=value), and returns the trace's spans.
func (o *otlpReceiver) waitSpans(ctx context.Context, t *testing.T, trace, name string) []otlpSpan {
	t.Helper()
	for {
		o.mu.Lock()
		var mine []otlpSpan
		found := false
		for _, s := range o.spans {
			if s.Trace == trace {
				mine = append(mine, s)
				found = found || s.Name == name
			}
		}
		ch := o.changed
		o.mu.Unlock()
		if found {
			return mine
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no %s span of trace %s arrived; %d spans of it: %v", name, trace, len(mine), mine)
		}
	}
}

// hookServer is the flow's webhook and events receiver: it keeps each
// request's path, traceparent and body.
type hookServer struct {
	srv  *http.Server
	ln   net.Listener
	mu   sync.Mutex
	reqs []hookRequest
}

type hookRequest struct {
	Path, Traceparent string
	Body              map[string]any
}

func startHooks(t *testing.T) *hookServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hookServer{ln: ln}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{Path: r.URL.Path, Traceparent: r.Header.Get("traceparent"), Body: m})
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"order":"4711"}`))
	})}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(func() { h.srv.Close() })
	return h
}

func (h *hookServer) URL(path string) string { return "http://" + h.ln.Addr().String() + path }

// of returns the requests to path about call (by call_id).
func (h *hookServer) of(path, callID string) []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookRequest
	for _, r := range h.reqs {
		if r.Path == path && r.Body["call_id"] == callID {
			out = append(out, r)
		}
	}
	return out
}

// observeFlow: +4930556700 asks the webhook, then transfers to the
// shipper with the trace header and leg events; +4930556701 transfers
// without the webhook. Success resumes to the agent.
const observeFlow = `name: observe
version: "1"
entry: ["+4930556700", "+4930556701"]
start: pick
blocks:
  pick:
    type: CheckAttribute
    attribute: $.System.DialedNumber
    conditions:
      - {op: Equals, value: "+4930556700", branch: hook}
    branches: {hook: hook, NoMatch: to_shipper}
  hook:
    type: InvokeWebhook
    url: %[1]s
    timeout: 2
    branches: {Success: to_shipper, Error: to_shipper}
  to_shipper:
    type: TransferToPhoneNumber
    number: "+4930123456"
    timeout: 20
    resume: true
    dtmf: "12"
    caller_id_number: "+4930555000"
    trace_header: X-Traceparent
    events_url: %[2]s
    branches: {Success: agent, CallFailed: agent_failed, Timeout: agent_failed, Error: agent_failed}
  agent:
    type: TransferToAgent
    endpoint: "+4930111000"
  agent_failed:
    type: TransferToAgent
    endpoint: "+4930111001"
`

// observeEnv is a traced process and what it reports to.
type observeEnv struct {
	otlp   *otlpReceiver
	hooks  *hookServer
	flows  string
	stream string
	env    []string
	procs  []*Ariflow
}

func newObserveEnv(t *testing.T) *observeEnv {
	t.Helper()
	e := &observeEnv{otlp: startOTLP(t), hooks: startHooks(t), flows: t.TempDir(),
		stream: fmt.Sprintf("ariflow:records:e2e-%d", time.Now().UnixNano())}
	if err := os.WriteFile(filepath.Join(e.flows, "observe.yaml"),
		[]byte(fmt.Sprintf(observeFlow, e.hooks.URL("/lookup"), e.hooks.URL("/events"))), 0o644); err != nil {
		t.Fatal(err)
	}
	e.env = []string{"ARIFLOW_APP=ariflow-sec",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + e.otlp.Endpoint(),
		"OTEL_BSP_SCHEDULE_DELAY=100", // a span ended before a SIGKILL reaches the receiver
		"ARIFLOW_TRACE_NUMBERS=masked",
		"ARIFLOW_RECORDS=redis", "ARIFLOW_RECORDS_STREAM=" + e.stream}
	t.Cleanup(func() {
		for _, p := range e.procs {
			p.Close()
		}
		_ = stack.RDB.Del(context.Background(), e.stream).Err()
	})
	return e
}

func (e *observeEnv) start(ctx context.Context, t *testing.T, name string, standby bool) *Ariflow {
	t.Helper()
	p, err := StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: e.flows, Standby: standby, Env: e.env}, name)
	if err != nil {
		t.Fatal(err)
	}
	e.procs = append(e.procs, p)
	return p
}

// record waits for the call record of the call from caller.
func (e *observeEnv) record(ctx context.Context, t *testing.T, caller string) (*callrecord.Record, map[string]any) {
	t.Helper()
	for {
		got, err := callrecord.Latest(ctx, stack.RDB, e.stream, callrecord.Filter{Caller: caller}, 1, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			var raw map[string]any
			if err := json.Unmarshal([]byte(got[0].Raw), &raw); err != nil {
				t.Fatal(err)
			}
			return got[0].Record, raw
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no call record from %s in %s", caller, e.stream)
		case <-time.After(50 * time.Millisecond): // the stream has no event to wait for without a reader of our own
		}
	}
}

// dialTraced places a call like Carrier.Dial whose INVITE carries the
// caller's traceparent.
func dialTraced(ctx context.Context, from, did, traceparent string) (*Caller, error) {
	return carrier.dialWith(ctx, from, did, map[string]string{"PJSIP_HEADER(add,traceparent)": traceparent})
}

func traceOf(traceparent string) string {
	if len(traceparent) != 55 {
		return ""
	}
	return traceparent[3:35]
}

func byName(spans []otlpSpan) map[string][]otlpSpan {
	m := map[string][]otlpSpan{}
	for _, s := range spans {
		m[s.Name] = append(m[s.Name], s)
	}
	return m
}

// A traced seed call: the caller's trace is continued (its INVITE's
// traceparent), the span tree reaches the OTLP receiver, and the webhook,
// the leg events and the far end's INVITE carry the trace; its call
// record arrives in the stream with the documented fields.
func TestObserveTracedCall(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	e := newObserveEnv(t)
	e.start(ctx, t, "ariflow-observe.log", false)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerTP := "00-" + trace + "-00f067aa0ba902b7-01"
	from := nextCaller()
	ship, agent := carrier.Expect(shipper), carrier.ExpectFrom(agentOK, from)
	caller, err := dialTraced(ctx, from, "+4930556700", callerTP)
	if err != nil {
		t.Fatal(err)
	}
	s := recv(ctx, t, ship, "shipper")
	invite, err := s.Header("X-Traceparent")
	if err != nil {
		t.Fatalf("the shipper's INVITE: %v", err)
	}
	if traceOf(invite) != trace {
		t.Errorf("the shipper's INVITE carries X-Traceparent %q, not the caller's trace %s", invite, trace)
	}
	if err := s.Answer(); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Digits(ctx, 2); err != nil || d != "12" {
		t.Fatalf("digits %q (%v)", d, err)
	}
	if err := s.Hangup(); err != nil {
		t.Fatal(err)
	}
	a := recv(ctx, t, agent, "agent after Success")
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}

	rec, raw := e.record(ctx, t, from)
	spans := e.otlp.waitSpans(ctx, t, trace, "call")
	names := byName(spans)
	call := names["call"][0]
	if call.Parent != "00f067aa0ba902b7" || call.Attrs["ariflow.call.id"] != rec.CallID || call.Attrs["ariflow.flow.name"] != "observe" {
		t.Errorf("call span %+v: want the caller's span as parent and the call's ID", call)
	}
	if got := call.Attrs["ariflow.caller.number"]; got == from || !strings.Contains(got, "*") || got[len(got)-3:] != from[len(from)-3:] {
		t.Errorf("caller number in the span %q: want it masked", got)
	}
	id := map[string]otlpSpan{}
	for _, s := range spans {
		id[s.ID] = s
	}
	parentOf := func(s otlpSpan) string { return id[s.Parent].Name }
	for name, parent := range map[string]string{"CheckAttribute": "call", "InvokeWebhook": "call", "TransferToPhoneNumber": "call",
		"TransferToAgent": "call", "transfer.dialing": "TransferToPhoneNumber", "transfer.bridged": "TransferToPhoneNumber",
		"transfer.ended": "TransferToPhoneNumber"} {
		if len(names[name]) == 0 {
			t.Errorf("no %s span; spans %v", name, names)
			continue
		}
		if got := parentOf(names[name][0]); got != parent {
			t.Errorf("%s's parent is %q, want %s", name, got, parent)
		}
	}
	if xfer := names["TransferToPhoneNumber"]; len(xfer) > 0 && (xfer[0].Attrs["ariflow.transfer.outcome"] != "success" || xfer[0].Attrs["ariflow.block.branch"] != "Success") {
		t.Errorf("transfer block span attributes %v", xfer[0].Attrs)
	}
	var dialing string
	if d := names["transfer.dialing"]; len(d) > 0 {
		dialing = d[0].ID
	}
	if invite != "00-"+trace+"-"+dialing+"-01" {
		t.Errorf("the INVITE's traceparent %q is not the dialing phase's span %s", invite, dialing)
	}

	hooks := e.hooks.of("/lookup", rec.CallID)
	if len(hooks) != 1 || traceOf(hooks[0].Traceparent) != trace {
		t.Errorf("webhook requests %+v: want one with the call's traceparent", hooks)
	}
	events := e.hooks.of("/events", rec.CallID)
	if len(events) < 2 {
		t.Errorf("%d leg events", len(events))
	}
	for _, ev := range events {
		if traceOf(ev.Traceparent) != trace {
			t.Errorf("leg event %v carries traceparent %q", ev.Body["event"], ev.Traceparent)
		}
	}

	// The call record, with the documented fields.
	for _, k := range []string{"schema", "schema_version", "call_id", "app", "channel", "caller", "dialed", "flow", "flow_version",
		"flow_digest", "started", "ended", "duration_s", "end", "blocks", "transfers", "processes", "trace_id"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("record has no %q", k)
		}
	}
	if rec.Schema != callrecord.Schema || rec.Version != 1 || rec.Caller != from || rec.Dialed != "+4930556700" || rec.TraceID != trace ||
		rec.End.Reason != callrecord.EndHandedOff || len(rec.Processes) != 1 {
		t.Errorf("record %+v", rec)
	}
	var path []string
	for _, b := range rec.Blocks {
		path = append(path, b.Block+":"+b.Branch)
	}
	if strings.Join(path, " ") != "pick:hook hook:Success to_shipper:Success agent:" {
		t.Errorf("blocks visited %q", path)
	}
	if len(rec.Transfers) != 2 {
		t.Fatalf("transfers %+v: want the shipper's and the agent's", rec.Transfers)
	}
	x := rec.Transfers[0]
	if x.Block != "to_shipper" || x.Outcome != "success" || x.EndedBy != "far-end" || x.Digits != "12" || len(x.Numbers) != 1 || x.Numbers[0].Number != shipper {
		t.Errorf("the shipper's transfer %+v", x)
	}
}

// A failed transfer's record: the number, its outcome and the far end's
// SIP response.
func TestObserveFailedTransferRecord(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	e := newObserveEnv(t)
	e.start(ctx, t, "ariflow-observe.log", false)
	from := nextCaller()
	ship, agent := carrier.Expect(shipper), carrier.ExpectFrom(agentFailed, from)
	caller, err := carrier.Dial(ctx, from, "+4930556701")
	if err != nil {
		t.Fatal(err)
	}
	s := recv(ctx, t, ship, "shipper")
	if err := s.Reject("busy"); err != nil {
		t.Fatal(err)
	}
	recv(ctx, t, agent, "agent after CallFailed").AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec, _ := e.record(ctx, t, from)
	if len(rec.Transfers) < 1 {
		t.Fatalf("no transfer in %+v", rec)
	}
	x := rec.Transfers[0]
	if x.Outcome != "call-failed" || len(x.Numbers) != 1 || x.Numbers[0].Outcome != "call-failed" || x.Numbers[0].Cause != 17 {
		t.Errorf("failed transfer %+v", x)
	}
	if x.Numbers[0].SIPCode != 0 && x.Numbers[0].SIPCode != 486 {
		t.Errorf("SIP code %d for busy", x.Numbers[0].SIPCode)
	}
	var path []string
	for _, b := range rec.Blocks {
		path = append(path, b.Block+":"+b.Branch)
	}
	if strings.Join(path, " ") != "pick:NoMatch to_shipper:CallFailed agent_failed:" {
		t.Errorf("blocks visited %q", path)
	}
	// Not traced by the caller: a trace of its own, in the record.
	if len(rec.TraceID) != 32 {
		t.Errorf("trace ID %q", rec.TraceID)
	}
}

// A takeover mid-call: the active process is killed while the caller and
// the shipper talk; the standby takes the call over, continues its trace
// (its call span a child of the first process's) and its record, which
// names both processes.
func TestObserveTakeoverContinuesTrace(t *testing.T) {
	ctx := callTest(t, 90*time.Second)
	e := newObserveEnv(t)
	first := e.start(ctx, t, "ariflow-observe-1.log", false)
	second := e.start(ctx, t, "ariflow-observe-2.log", true)
	const trace = "0af7651916cd43dd8448eb211c80319c"
	from := nextCaller()
	ship, agent := carrier.Expect(shipper), carrier.ExpectFrom(agentOK, from)
	caller, err := dialTraced(ctx, from, "+4930556701", "00-"+trace+"-b7ad6b7169203331-01")
	if err != nil {
		t.Fatal(err)
	}
	s := recv(ctx, t, ship, "shipper")
	if err := s.Answer(); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Digits(ctx, 2); err != nil || d != "12" {
		t.Fatalf("digits %q (%v)", d, err)
	}
	// The first process's spans that ended (the first block, the
	// dialing phase) have reached the receiver: it dies after.
	before := e.otlp.waitSpans(ctx, t, trace, "transfer.dialing")
	if err := first.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := second.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Hangup(); err != nil {
		t.Fatal(err)
	}
	recv(ctx, t, agent, "agent after the takeover").AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec, _ := e.record(ctx, t, from)
	spans := e.otlp.waitSpans(ctx, t, trace, "call")
	var firstCall, adopted otlpSpan
	for _, s := range before {
		if s.Name == "CheckAttribute" {
			firstCall.ID = s.Parent // the first process's call span, never exported: it was killed
		}
	}
	for _, s := range spans {
		if s.Name == "call" && s.Attrs["ariflow.adopted"] != "" {
			adopted = s
		}
	}
	if adopted.ID == "" {
		t.Fatalf("no call span of the adopting process in trace %s: %+v", trace, spans)
	}
	if firstCall.ID == "" || adopted.Parent != firstCall.ID {
		t.Errorf("the adopting process's call span's parent is %s, want the first process's call span %s", adopted.Parent, firstCall.ID)
	}
	if adopted.Instance == before[0].Instance {
		t.Errorf("both processes export as %s", adopted.Instance)
	}
	names := byName(spans)
	var bridgedAfter bool
	for _, b := range names["transfer.bridged"] {
		bridgedAfter = bridgedAfter || (b.Instance == adopted.Instance)
	}
	if !bridgedAfter || len(names["TransferToAgent"]) == 0 {
		t.Errorf("the adopting process's transfer phases and later blocks are missing: %v", names)
	}
	if rec.TraceID != trace || len(rec.Processes) != 2 || !rec.Processes[1].Adopted || rec.End.Reason != callrecord.EndHandedOff {
		t.Errorf("record %+v", rec)
	}
	if len(rec.Transfers) < 1 || rec.Transfers[0].Outcome != "success" || rec.Transfers[0].EndedBy != "far-end" {
		t.Errorf("transfers %+v", rec.Transfers)
	}
	var path []string
	for _, b := range rec.Blocks {
		path = append(path, fmt.Sprintf("%s:%s@%d", b.Block, b.Branch, b.By))
	}
	if strings.Join(path, " ") != "pick:NoMatch@0 to_shipper:Success@0 agent:@1" {
		t.Errorf("blocks visited %q", path)
	}
}
