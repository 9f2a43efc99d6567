package observe

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		on   bool
		err  bool
	}{
		{"nothing set", nil, false, false},
		{"endpoint", []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"}, true, false},
		{"traces endpoint", []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces"}, true, false},
		{"exporter otlp alone", []string{"OTEL_TRACES_EXPORTER", "otlp"}, true, false},
		{"exporter none wins", []string{"OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4318"}, false, false},
		{"sdk disabled wins", []string{"OTEL_SDK_DISABLED", "true", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4318"}, false, false},
		{"console exporter", []string{"OTEL_TRACES_EXPORTER", "console"}, false, true},
		{"grpc", []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4317"}, false, true},
		{"traces protocol wins", []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf",
			"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4318"}, true, false},
		{"http/protobuf", []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4318"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			on, err := Enabled(env(tc.env...))
			if on != tc.on || (err != nil) != tc.err {
				t.Errorf("Enabled = %v, %v; want %v, error %v", on, err, tc.on, tc.err)
			}
			if err != nil && !errors.Is(err, ErrUnsupported) {
				t.Errorf("error %v is not ErrUnsupported", err)
			}
		})
	}
}

// Off is nil: every hook is a no-op and nothing panics.
func TestOffIsNil(t *testing.T) {
	tr, err := New(context.Background(), Options{LookupEnv: env()})
	if err != nil || tr != nil {
		t.Fatalf("New without OTEL_* = %v, %v; want nil, nil", tr, err)
	}
	s := tr.StartCall("", time.Now(), CallInfo{CallID: "c1"})
	b := tr.StartBlock(s, "greet", "PlayPrompt")
	p := tr.StartPhase(b, transfer.StateChange{State: record.StateDialing})
	tr.NumberDone(b, p, 1, transfer.Result{})
	tr.Ended(b, transfer.Result{}, nil)
	EndBlock(b, "Next", nil)
	EndCall(s, "caller-hangup", nil)
	if s.Recording() || s.Traceparent() != "" || s.TraceID() != "" || tr.Number("+491") != "" || tr.Enabled() {
		t.Error("a nil tracer made something")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := New(context.Background(), Options{Numbers: "partly"}); err == nil {
		t.Error("a bad number mode was accepted")
	}
	if _, err := New(context.Background(), Options{Numbers: NumbersHashed, HashKey: []byte("short")}); err == nil {
		t.Error("a short hash key was accepted")
	}
	if _, err := New(context.Background(), Options{LookupEnv: env("OTEL_TRACES_EXPORTER", "zipkin")}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("zipkin exporter: %v, want ErrUnsupported", err)
	}
}

func TestParseTraceparent(t *testing.T) {
	const good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	sc, ok := ParseTraceparent(good)
	if !ok || sc.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || sc.SpanID().String() != "b7ad6b7169203331" || !sc.IsSampled() || !sc.IsRemote() {
		t.Fatalf("ParseTraceparent(%q) = %v, %v", good, sc, ok)
	}
	if got := Traceparent(sc); got != good {
		t.Errorf("round trip %q, want %q", got, good)
	}
	if sc, ok := ParseTraceparent("  " + good + " "); !ok || Traceparent(sc) != good {
		t.Error("spaces around the value are not ignored")
	}
	if sc, ok := ParseTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-future"); !ok || sc.IsSampled() {
		t.Errorf("a later version with more fields: %v %v", sc, ok)
	}
	for _, bad := range []string{"", "garbage", good[:54], good + "-x", "ff" + good[2:],
		"00-00000000000000000000000000000000-b7ad6b7169203331-01", "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
		"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x"} {
		if _, ok := ParseTraceparent(bad); ok {
			t.Errorf("ParseTraceparent(%q) accepted", bad)
		}
	}
}

func TestNumbers(t *testing.T) {
	key := []byte("0123456789abcdef")
	for _, tc := range []struct {
		mode NumberMode
		in   string
		want string
	}{
		{NumbersWhole, "+4917612345678", "+4917612345678"},
		{NumbersMasked, "+4917612345678", "+491*******678"},
		{NumbersMasked, "+4930123456", "+493****456"},
		{NumbersMasked, "110", "*10"},
		{NumbersMasked, "PJSIP/alice", "PJSIP/alice"},
		{NumbersMasked, "", ""},
	} {
		if got := FormatNumber(tc.mode, key, tc.in); got != tc.want {
			t.Errorf("%s %q = %q, want %q", tc.mode, tc.in, got, tc.want)
		}
	}
	h1, h2 := FormatNumber(NumbersHashed, key, "+4917612345678"), FormatNumber(NumbersHashed, key, "+4917612345679")
	if !strings.HasPrefix(h1, "h:") || len(h1) != 18 || h1 == h2 || h1 != FormatNumber(NumbersHashed, key, "+4917612345678") {
		t.Errorf("hashes %q %q: want h:+16 hex, equal for equal numbers only", h1, h2)
	}
	if FormatNumber(NumbersHashed, []byte("another key 0123"), "+4917612345678") == h1 {
		t.Error("the hash does not depend on the key")
	}
	for _, s := range []string{"whole", "masked", "hashed", ""} {
		if _, err := ParseNumberMode(s); err != nil {
			t.Errorf("ParseNumberMode(%q): %v", s, err)
		}
	}
}

func attrs(kv []attribute.KeyValue) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, a := range kv {
		m[a.Key] = a.Value.Emit()
	}
	return m
}

// A call's spans form the documented tree, continue the caller's trace,
// and a takeover's call span joins the same trace under the first one.
func TestSpanTree(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(context.Background(), Options{Exporter: exp, Syncer: true, Numbers: NumbersMasked, Instance: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	call := tr.StartCall(caller, time.Now(), CallInfo{CallID: "c1", Caller: "+4917612345678", Flow: "shipping", Version: "1", Process: "p1"})
	greet := tr.StartBlock(call, "greet", "PlayPrompt")
	EndBlock(greet, "Next", nil)
	xfer := tr.StartBlock(call, "to_shipper", "TransferToPhoneNumber")
	dialing := tr.StartPhase(xfer, transfer.StateChange{State: record.StateDialing, Number: "+4930123456", Attempt: 1, Leg: "leg-1"})
	dialing.End()
	bridged := tr.StartPhase(xfer, transfer.StateChange{State: record.StateBridged, Number: "+4930123456", Attempt: 1, Leg: "leg-1"})
	res := transfer.Result{Outcome: transfer.OutcomeSuccess, Number: "+4930123456", Cause: 16, EndedBy: "far-end", Attempts: 1}
	tr.NumberDone(xfer, bridged, 1, res)
	bridged.End()
	tr.Ended(xfer, res, nil)
	EndBlock(xfer, "Success", nil)
	record := call.Traceparent()
	EndCall(call, "caller-hangup", nil)

	// Another process takes the call over from its record.
	tr2 := tr
	call2 := tr2.StartCall(record, time.Now(), CallInfo{CallID: "c1", Process: "p2", Adopted: true, AdoptedFrom: "p1"})
	EndCall(call2, "disconnected", errors.New("boom"))

	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name+"/"+attrs(s.Attributes)[AttrProcess]] = s
		if s.SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("span %s in trace %s, not the caller's", s.Name, s.SpanContext.TraceID())
		}
	}
	if len(spans) != 7 {
		t.Fatalf("%d spans, want 7: %v", len(spans), spans)
	}
	root, second := byName["call/p1"], byName["call/p2"]
	if root.Parent.SpanID().String() != "b7ad6b7169203331" {
		t.Errorf("the call span's parent is %s, not the caller's span", root.Parent.SpanID())
	}
	if second.Parent.SpanID() != root.SpanContext.SpanID() || attrs(second.Attributes)[AttrAdoptedFrom] != "p1" {
		t.Errorf("the taken-over call span's parent is %s, want the first call span %s", second.Parent.SpanID(), root.SpanContext.SpanID())
	}
	if a := attrs(root.Attributes); a[AttrCaller] != "+491*******678" || a[AttrEnd] != "caller-hangup" || a[AttrFlow] != "shipping" {
		t.Errorf("call attributes %v", a)
	}
	parentName := map[string]string{}
	ids := map[string]string{}
	for _, s := range spans {
		ids[s.SpanContext.SpanID().String()] = s.Name
	}
	for _, s := range spans {
		parentName[s.Name] = ids[s.Parent.SpanID().String()]
	}
	for child, parent := range map[string]string{"PlayPrompt": "call", "TransferToPhoneNumber": "call",
		"transfer.dialing": "TransferToPhoneNumber", "transfer.bridged": "TransferToPhoneNumber", "transfer.ended": "TransferToPhoneNumber"} {
		if parentName[child] != parent {
			t.Errorf("%s's parent is %q, want %q", child, parentName[child], parent)
		}
	}
	for _, s := range spans {
		a := attrs(s.Attributes)
		switch s.Name {
		case "TransferToPhoneNumber":
			if a[AttrBranch] != "Success" || a[AttrOutcome] != "success" || a[AttrNumber] != "+493****456" || len(s.Events) != 1 {
				t.Errorf("transfer block attributes %v, events %v", a, s.Events)
			}
		case "transfer.bridged":
			if a[AttrCause] != "16" || a[AttrEndedBy] != "far-end" || a[AttrLeg] != "leg-1" {
				t.Errorf("bridged phase attributes %v", a)
			}
		}
	}
	if s := byName["call/p2"]; s.Status.Description != "boom" {
		t.Errorf("error status %+v", s.Status)
	}
}
