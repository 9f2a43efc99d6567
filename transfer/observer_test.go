package transfer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// recordingObserver writes down what a transfer tells its Observer.
type recordingObserver struct {
	seen []string
	tp   string
}

func (o *recordingObserver) TransferState(_ Call, s StateChange) {
	o.seen = append(o.seen, fmt.Sprintf("state %s %s #%d %s", s.State, s.Number, s.Attempt, s.Leg))
}

func (o *recordingObserver) NumberDone(_ Call, attempt int, r Result) {
	o.seen = append(o.seen, fmt.Sprintf("number #%d %s %s %s", attempt, r.Number, r.Outcome, r.DeniedBy))
}

func (o *recordingObserver) TransferEnded(_ Call, r Result, err error) {
	o.seen = append(o.seen, fmt.Sprintf("ended %s %d attempts, err %v", r.Outcome, r.Attempts, err))
}

func (o *recordingObserver) Traceparent(Call) string { return o.tp }

// createVars keeps the variables of every create.
type createVars struct {
	*fakeARI
	vars []map[string]string
}

func (a *createVars) Create(ctx context.Context, r ari.CreateRequest) error {
	a.vars = append(a.vars, r.Variables)
	return a.fakeARI.Create(ctx, r)
}

// The Observer hears every state of every number, each number's end
// (the refused one too) and the block's end, in order; the trace header
// goes on the INVITE of every leg.
func TestObserverHearsTheList(t *testing.T) {
	call, fa := newFakeCall(), newFakeARI()
	a := &createVars{fakeARI: fa}
	gate := &fakeGate{deny: map[string]string{"+4930000002": "premium"}}
	obs := &recordingObserver{tp: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	env := testEnv(fa)
	env.ARI, env.Observer = a, obs
	plan := Plan{Resume: true, Options: Options{TraceHeader: "X-Traceparent"}, Targets: []record.Target{
		{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5},
		{Number: "+4930000002", Dial: "PJSIP/+4930000002@trunk", TimeoutS: 5},
		{Number: "+4930000003", Dial: "PJSIP/+4930000003@trunk", TimeoutS: 5},
	}}
	call.events = []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
		&ari.Dial{Peer: ari.ChannelData{ID: "leg-1"}, Dialstatus: "RINGING"},
		destroyed("leg-1", 17, "Down"),
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-3", State: "Up"}},
		destroyed("leg-3", 16, "Up"),
	}
	res, err := Run(context.Background(), call, env, gate, plan, 0)
	if err != nil || res.Outcome != OutcomeSuccess {
		t.Fatalf("%+v %v; want Success", res, err)
	}
	want := []string{
		"state dialing +4930000001 #1 leg-1",
		"state ringing +4930000001 #1 leg-1",
		"number #1 +4930000001 call-failed ",
		"number #2 +4930000002 denied premium",
		"state dialing +4930000003 #3 leg-3",
		"state bridged +4930000003 #3 leg-3",
		"number #3 +4930000003 success ",
		"ended success 3 attempts, err <nil>",
	}
	if !slices.Equal(obs.seen, want) {
		t.Errorf("observer heard\n%q\nwant\n%q", obs.seen, want)
	}
	if len(a.vars) != 2 {
		t.Fatalf("%d legs made, want 2", len(a.vars))
	}
	for i, v := range a.vars {
		if v["PJSIP_HEADER(add,X-Traceparent)"] != obs.tp {
			t.Errorf("leg %d: INVITE variables %v carry no trace header", i+1, v)
		}
	}
}

// Without a trace context (tracing off) the header is left out, and a
// block without trace_header never asks for one.
func TestTraceHeaderOnlyWhenTraced(t *testing.T) {
	for _, tc := range []struct {
		name, header, tp string
	}{{"tracing off", "X-Traceparent", ""}, {"not asked", "", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}} {
		t.Run(tc.name, func(t *testing.T) {
			call, fa := newFakeCall(), newFakeARI()
			a := &createVars{fakeARI: fa}
			env := testEnv(fa)
			env.ARI, env.Observer = a, &recordingObserver{tp: tc.tp}
			plan := Plan{Options: Options{TraceHeader: tc.header}, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
			call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}, destroyed("leg-1", 17, "Down")}
			if _, err := Run(context.Background(), call, env, nil, plan, 0); err != nil {
				t.Fatal(err)
			}
			for k := range a.vars[0] {
				if k != "CALLERID(num)" && k != "CALLERID(name)" && k != "CONNECTEDLINE(num,i)" && k != "CONNECTEDLINE(name,i)" && !strings.Contains(k, undialledMarker) {
					t.Errorf("INVITE variable %s set", k)
				}
			}
		})
	}
}

// A transfer taken over while bridged tells the Observer so, and the
// block's end with the leg's.
func TestObserverHearsAdoption(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	obs := &recordingObserver{}
	env := testEnv(a)
	env.Observer = obs
	a.states["leg-9"] = "Up"
	a.bridges["br-9"] = []string{"c1", "leg-9"}
	call.rec.Phase, call.rec.Outbound, call.rec.Bridge = record.PhaseBridged, "leg-9", "br-9"
	call.rec.Transfer = &record.Transfer{State: record.StateBridged, Number: "+4930000001", Resume: true, Attempt: 1,
		Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
	call.events = []ari.Event{destroyed("leg-9", 16, "Up")}
	if _, err := Adopt(context.Background(), call, env, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"state bridged +4930000001 #1 leg-9", "number #1 +4930000001 success ", "ended success 1 attempts, err <nil>"}
	if !slices.Equal(obs.seen, want) {
		t.Errorf("observer heard %q, want %q", obs.seen, want)
	}
}
