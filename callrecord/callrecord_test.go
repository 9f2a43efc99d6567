package callrecord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/webhook"
	"github.com/ariflow/ariflow/record"
)

var quiet = func() *logrus.Logger { l := logrus.New(); l.SetOutput(io.Discard); return l }()

// counts tallies outcomes.
type counts struct {
	mu sync.Mutex
	n  map[Outcome]int
}

func (c *counts) add(o Outcome) { c.mu.Lock(); c.n[o]++; c.mu.Unlock() }
func (c *counts) get(o Outcome) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[o]
}
func newCounts() *counts { return &counts{n: map[Outcome]int{}} }

func sampleCall(id, caller string) *record.Call {
	t0 := time.Date(2026, 11, 30, 14, 2, 0, 0, time.UTC)
	rec := &record.Call{CallID: id, Channel: "PJSIP/pbx-0001", Flow: "shipping", Version: "1", Digest: "d1", Started: t0,
		Attributes: flows.Attributes{}}
	rec.Attributes.Set(flows.NSSystem, flows.SysCallerNumber, caller)
	rec.Attributes.Set(flows.NSSystem, flows.SysDialedNumber, "+4930555000")
	rec.Attributes.Set(flows.NSAttributes, "tracking", "4711")
	h := &record.History{}
	h.Serve("p1", 3, t0, false)
	h.Visit("", "greet", "PlayPrompt", t0)
	h.Left("Next", nil, t0.Add(time.Second))
	h.Visit("", "to_shipper", "TransferToPhoneNumber", t0.Add(time.Second))
	tr := h.Transfer("to_shipper", false, t0.Add(time.Second))
	h.Tried(tr, record.NumberTried{Number: "+4930123456", Attempt: 1, Outcome: "call-failed", Cause: 17, SIPCode: 486})
	h.Serve("p2", 4, t0.Add(2*time.Second), true)
	tr = h.Transfer("to_shipper", false, t0.Add(2*time.Second)) // the same, carried on
	h.Tried(tr, record.NumberTried{Number: "+4930123457", Attempt: 2, Outcome: "success", Cause: 16, EndedBy: "far-end"})
	tr.End, tr.Outcome, tr.Number, tr.Attempts, tr.EndedBy = t0.Add(9*time.Second), "success", "+4930123457", 2, "far-end"
	h.Left("Success", nil, t0.Add(9*time.Second))
	rec.History = h
	return rec
}

func TestBuild(t *testing.T) {
	rec := sampleCall("c1", "+4917612345678")
	end := rec.Started.Add(10 * time.Second)
	r := Build(rec, "ariflow", End{Reason: EndCallerHangup, Block: "ask"}, end, "0af7651916cd43dd8448eb211c80319c")
	if r.Schema != Schema || r.Version != 1 || r.Caller != "+4917612345678" || r.Dialed != "+4930555000" || r.DurationS != 10 ||
		r.Flow != "shipping" || r.TraceID == "" || r.Attributes["tracking"] != "4711" {
		t.Errorf("record %+v", r)
	}
	if len(r.Blocks) != 2 || r.Blocks[1].Branch != "Success" || r.Blocks[0].By != 0 {
		t.Errorf("blocks %+v", r.Blocks)
	}
	if len(r.Transfers) != 1 || len(r.Transfers[0].Numbers) != 2 || r.Transfers[0].Numbers[1].By != 1 || r.Transfers[0].Outcome != "success" {
		t.Errorf("transfers %+v", r.Transfers)
	}
	if len(r.Processes) != 2 || !r.Processes[1].Adopted || r.Processes[1].Owner != "p2" {
		t.Errorf("processes %+v", r.Processes)
	}
	// The documented top-level fields, by their JSON names.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "schema_version", "call_id", "app", "channel", "caller", "dialed", "flow", "flow_version",
		"started", "ended", "duration_s", "end", "blocks", "transfers", "processes", "trace_id", "attributes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	// A call with no history (no sink was on when it started) has empty
	// lists, not nulls.
	bare := Build(&record.Call{CallID: "c2"}, "", End{Reason: EndError}, time.Now(), "")
	b, _ = json.Marshal(bare)
	var m2 map[string]any
	_ = json.Unmarshal(b, &m2)
	if m2["blocks"] == nil || m2["transfers"] == nil || m2["processes"] == nil {
		t.Errorf("bare record %s", b)
	}
}

func TestHistoryBounds(t *testing.T) {
	h := &record.History{}
	t0 := time.Now()
	for i := 0; i < record.MaxVisits+10; i++ {
		h.Visit("", fmt.Sprintf("b%d", i), "PlayPrompt", t0)
		h.Left("Next", errors.New(string(make([]byte, 500))), t0)
	}
	if len(h.Blocks) != record.MaxVisits || h.BlocksDropped != 10 || h.Blocks[0].Block != "b10" {
		t.Errorf("%d blocks kept, %d dropped, first %s", len(h.Blocks), h.BlocksDropped, h.Blocks[0].Block)
	}
	if len(h.Blocks[0].Error) > record.MaxError+len("…") {
		t.Errorf("error kept at %d bytes", len(h.Blocks[0].Error))
	}
	for i := 0; i < record.MaxTransfers+2; i++ {
		tr := h.Transfer(fmt.Sprintf("x%d", i), false, t0)
		tr.End = t0
	}
	if len(h.Transfers) != record.MaxTransfers || h.TransfersDropped != 2 {
		t.Errorf("%d transfers, %d dropped", len(h.Transfers), h.TransfersDropped)
	}
	for i := 0; i < record.MaxServed+3; i++ {
		h.Serve(fmt.Sprintf("p%d", i), int64(i), t0, true)
	}
	if len(h.Served) != record.MaxServed || h.Served[0].Owner != "p0" || h.Served[len(h.Served)-1].Owner != fmt.Sprintf("p%d", record.MaxServed+2) {
		t.Errorf("served %+v", h.Served)
	}
	// Left without an open block does nothing.
	h2 := &record.History{}
	h2.Left("Next", nil, t0)
	if len(h2.Blocks) != 0 {
		t.Error("Left made a visit")
	}
}

func newRedis(t *testing.T) (*miniredis.Miniredis, *redis.Client) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return mr, rdb
}

func TestRedisStreamWritesAndReads(t *testing.T) {
	_, rdb := newRedis(t)
	c := newCounts()
	s := NewRedisStream(rdb, RedisOptions{Key: "ariflow:records", MaxLen: 1000, Result: c.add, Log: quiet})
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		caller := "+4917600000001"
		if i%2 == 1 {
			caller = "+4917600000002"
		}
		if !s.Send(ctx, Build(sampleCall(fmt.Sprintf("c%d", i), caller), "ariflow", End{Reason: EndDisconnected}, time.Now(), "")) {
			t.Fatal("record not queued")
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c.get(Sent) != 5 {
		t.Fatalf("%d sent, want 5", c.get(Sent))
	}
	// The stream's entries carry the flat fields and the record.
	msgs, err := rdb.XRange(ctx, "ariflow:records", "-", "+").Result()
	if err != nil || len(msgs) != 5 {
		t.Fatalf("%d entries (%v)", len(msgs), err)
	}
	for _, k := range []string{FieldVersion, FieldCallID, FieldCaller, FieldRecord} {
		if _, ok := msgs[0].Values[k]; !ok {
			t.Errorf("entry without %s: %v", k, msgs[0].Values)
		}
	}
	got, err := Latest(ctx, rdb, "ariflow:records", Filter{Caller: "+4917600000001"}, 10, 1000)
	if err != nil || len(got) != 3 || got[0].Record.CallID != "c4" || got[2].Record.CallID != "c0" {
		t.Errorf("by caller: %d records (%v), newest first", len(got), err)
	}
	got, err = Latest(ctx, rdb, "ariflow:records", Filter{CallID: "c3"}, 10, 1000)
	if err != nil || len(got) != 1 || got[0].Record.Caller != "+4917600000002" || len(got[0].Record.Transfers) != 1 {
		t.Errorf("by call ID: %+v (%v)", got, err)
	}
	got, err = Latest(ctx, rdb, "ariflow:records", Filter{}, 2, 1000)
	if err != nil || len(got) != 2 {
		t.Errorf("latest two: %d (%v)", len(got), err)
	}
	// scan bounds what is looked at.
	got, err = Latest(ctx, rdb, "ariflow:records", Filter{CallID: "c0"}, 10, 2)
	if err != nil || len(got) != 0 {
		t.Errorf("scan 2 found the oldest: %d (%v)", len(got), err)
	}
	// A consumer group reads them as well.
	if err := rdb.XGroupCreate(ctx, "ariflow:records", "billing", "0").Err(); err != nil {
		t.Fatal(err)
	}
	streams, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "b1", Streams: []string{"ariflow:records", ">"}, Count: 10}).Result()
	if err != nil || len(streams) != 1 || len(streams[0].Messages) != 5 {
		t.Errorf("consumer group read %v (%v)", streams, err)
	}
}

// The stream stays bounded.
func TestRedisStreamBounded(t *testing.T) {
	_, rdb := newRedis(t)
	s := NewRedisStream(rdb, RedisOptions{MaxLen: 10, Log: quiet})
	for i := 0; i < 50; i++ {
		s.Send(context.Background(), &Record{CallID: fmt.Sprint(i), Version: Version})
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, err := rdb.XLen(context.Background(), DefaultStream).Result()
	if err != nil || n > 20 {
		t.Errorf("stream of %d entries (%v); MAXLEN ~ 10", n, err)
	}
}

// A full queue drops and counts at once; Redis down fails and counts,
// after one retry; nothing waits.
func TestRedisStreamNeverWaits(t *testing.T) {
	mr, rdb := newRedis(t)
	mr.Close() // Redis down
	c := newCounts()
	s := NewRedisStream(rdb, RedisOptions{Queue: 2, Batch: 1, Timeout: 100 * time.Millisecond, Retry: 10 * time.Millisecond, Result: c.add, Log: quiet})
	start := time.Now()
	queued := 0
	for i := 0; i < 100; i++ {
		if s.Send(context.Background(), &Record{CallID: fmt.Sprint(i)}) {
			queued++
		}
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("100 sends took %v", d)
	}
	if c.get(Dropped) != 100-queued || queued == 0 {
		t.Errorf("%d queued, %d dropped", queued, c.get(Dropped))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c.get(Failed) != queued {
		t.Errorf("%d failed, want %d", c.get(Failed), queued)
	}
	if s.Send(context.Background(), &Record{}) || c.get(Dropped) != 101-queued {
		t.Error("a send after Close was not dropped")
	}
}

// The webhook sink signs the record and carries the call's traceparent.
func TestWebhookSink(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	secret := []byte("0123456789abcdef0123")
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer srv.Close()
	client, err := webhook.New(webhook.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	c := newCounts()
	w := NewWebhook(client, srv.URL+"/records", c.add, quiet)
	defer w.Close(context.Background())
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	if !w.Send(ctx, Build(sampleCall("c9", "+4917600000009"), "ariflow", End{Reason: EndHandedOff}, time.Now(), tid.String())) {
		t.Fatal("not queued")
	}
	var r *http.Request
	select {
	case r = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no request")
	}
	body := <-bodies
	if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute); err != nil {
		t.Errorf("signature: %v", err)
	}
	if tp := r.Header.Get("traceparent"); tp != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Errorf("traceparent %q", tp)
	}
	var rec Record
	if err := json.Unmarshal(body, &rec); err != nil || rec.CallID != "c9" || rec.End.Reason != EndHandedOff {
		t.Errorf("body %s (%v)", body, err)
	}
}
