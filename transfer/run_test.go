package transfer

import (
	"context"
	"slices"
	"testing"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// A list: the first number busy, the second refused by the policy (never
// dialled), the third answers. Each leg is saved as created, then dialing,
// before it is made and dialled; the slots of ended legs are given back.
func TestRunList(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	gate := &fakeGate{deny: map[string]string{"+4930000002": "premium"}}
	plan := Plan{Resume: true, Targets: []record.Target{
		{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5},
		{Number: "+4930000002", Dial: "PJSIP/+4930000002@trunk", TimeoutS: 5},
		{Number: "+4930000003", Dial: "PJSIP/+4930000003@trunk", TimeoutS: 5},
	}}
	// IDs: leg-1 br-2 for the first number, leg-3 br-4 for the third.
	call.events = []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}, destroyed("leg-1", 17, "Down"),
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-3", State: "Up"}},
		destroyed("leg-3", 16, "Up"),
	}
	res, err := Run(context.Background(), call, testEnv(a), gate, plan, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeSuccess || res.Number != "+4930000003" || res.Attempts != 3 {
		t.Errorf("result %+v; want Success at the third number, 3 attempts", res)
	}
	for _, want := range []string{"create leg-1 PJSIP/+4930000001@trunk", "dial leg-1 5s", "create leg-3 PJSIP/+4930000003@trunk", "dial leg-3 5s", "add br-4 c1,leg-3"} {
		if !slices.Contains(a.requests(), want) {
			t.Errorf("no %q in %q", want, a.requests())
		}
	}
	if slices.ContainsFunc(a.requests(), func(r string) bool { return r == "create leg-2 PJSIP/+4930000002@trunk" }) {
		t.Error("the refused number was dialled")
	}
	if !slices.Equal(gate.acquired, []string{"c1:0", "c1:1"}) || !slices.Equal(gate.released, []string{"c1:0", "c1:1"}) {
		t.Errorf("slots acquired %q released %q", gate.acquired, gate.released)
	}
	// dialing for each leg, then bridged.
	if call.saves != 3 || call.rec.Transfers != 2 {
		t.Errorf("%d saves, %d transfers counted; want 3 and 2", call.saves, call.rec.Transfers)
	}
}

// A number the policy refuses as the block's last: nothing dialled, the
// Denied outcome and its rule.
func TestRunDenied(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	gate := &fakeGate{deny: map[string]string{"+881612345678": "satellite"}}
	plan := Plan{Targets: []record.Target{{Number: "+881612345678", Dial: "PJSIP/+881612345678@trunk", TimeoutS: 5}}}
	res, err := Run(context.Background(), call, testEnv(a), gate, plan, 0)
	if err != nil || res.Outcome != OutcomeDenied || res.DeniedBy != "satellite" || len(a.requests()) != 0 {
		t.Errorf("%+v %v, requests %q; want Denied by satellite, nothing asked of Asterisk", res, err, a.requests())
	}
}

// The policy's counters refuse a number while its leg is made (a rate
// used up): the leg is hung up undialled, its bridge destroyed, and the
// list goes on; no slot is held for it.
func TestRunCountersRefuseWhileMaking(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	gate := &fakeGate{full: map[string]string{"+4930000001": "rate-per-caller"}}
	plan := Plan{Resume: true, Targets: []record.Target{
		{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5},
		{Number: "+4930000002", Dial: "PJSIP/+4930000002@trunk", TimeoutS: 5},
	}}
	call.events = []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-3", State: "Up"}},
		destroyed("leg-3", 16, "Up"),
	}
	res, err := Run(context.Background(), call, testEnv(a), gate, plan, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeSuccess || res.Number != "+4930000002" {
		t.Errorf("result %+v; want Success at the second number", res)
	}
	reqs := a.requests()
	if slices.Contains(reqs, "dial leg-1 5s") {
		t.Errorf("the refused leg was dialled: %q", reqs)
	}
	for _, want := range []string{"create leg-1 PJSIP/+4930000001@trunk", "hangup leg-1", "destroy br-2", "dial leg-3 5s"} {
		if !slices.Contains(reqs, want) {
			t.Errorf("no %q in %q", want, reqs)
		}
	}
	if !slices.Equal(gate.acquired, []string{"c1:0"}) || !slices.Equal(gate.released, []string{"c1:0"}) || call.rec.Transfers != 1 {
		t.Errorf("slots acquired %q released %q, transfers %d; want only the second number's, c1:0", gate.acquired, gate.released, call.rec.Transfers)
	}
}

// The record names the leg "dialing" before the dial. A process whose
// calls' context ends once the leg is in the app (its lease lost, or a
// stop) still sends the dial: whoever takes over waits for that leg and
// never dials it, so a dial held back would leave the caller waiting. (One
// whose context ends before the leg is in the app leaves it undialled,
// and the next process proves that and dials the number at once.)
func TestDialLeavesOnceDialingIsWritten(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	call.onEvent = func(ev ari.Event) {
		if _, ok := ev.(*ari.StasisStart); ok && call.rec.Phase == record.PhaseDialing {
			cancel()
		}
	}
	plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
	call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}}
	if _, err := Run(ctx, call, testEnv(a), &fakeGate{}, plan, 0); err == nil {
		t.Error("Run went on after its context ended")
	}
	reqs := a.requests()
	if !slices.Contains(reqs, "dial leg-1 5s") {
		t.Errorf("the leg named dialing was not dialled: %q", reqs)
	}
	if slices.Contains(reqs, "hangup leg-1") {
		t.Errorf("the leg was hung up, though the call is left to the next process: %q", reqs)
	}
}
