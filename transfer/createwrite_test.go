package transfer

import (
	"context"
	"slices"
	"testing"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// The "dialing" write leaves once the leg's create has left, not after
// its answer; the dial waits for both.
func TestDialingWrittenWhileTheLegIsMade(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	a.announce, a.holdCreate = true, make(chan struct{})
	var beforeAnswer, seen bool
	call.onPhase = func(p record.Phase) {
		if p == record.PhaseDialing && !seen {
			seen = true
			a.mu.Lock()
			beforeAnswer = !a.createAnswered
			a.mu.Unlock()
			close(a.holdCreate)
		}
	}
	call.events = []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}},
		destroyed("leg-1", 16, "Up"),
	}
	plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
	res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
	if err != nil || res.Outcome != OutcomeSuccess {
		t.Fatalf("%+v %v", res, err)
	}
	if !seen || !beforeAnswer {
		t.Errorf("dialing written %v, before the create's answer %v; want both", seen, beforeAnswer)
	}
	reqs := a.requests()
	if c, d := slices.Index(reqs, "create leg-1 PJSIP/+4930000001@trunk"), slices.Index(reqs, "dial leg-1 5s"); c < 0 || d < c {
		t.Errorf("requests %q: want the create, then the dial", reqs)
	}
}

// A create refused after the "dialing" write went out: nothing is
// dialled, the leg is hung up, its slot given back, and the block takes
// Error.
func TestCreateRefusedAfterTheDialingWrite(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	a.announce = true
	a.failOnce["create"] = []error{&ari.StatusError{Code: 500, Status: "500 Internal Server Error"}}
	gate := &fakeGate{}
	plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
	res, err := Run(context.Background(), call, testEnv(a), gate, plan, 0)
	if err != nil || res.Outcome != OutcomeError {
		t.Fatalf("%+v %v; want Error", res, err)
	}
	if !slices.Contains(call.phases, record.PhaseDialing) {
		t.Errorf("phases %q: the write was to leave with the create", call.phases)
	}
	reqs := a.requests()
	if slices.ContainsFunc(reqs, func(r string) bool { return len(r) > 4 && r[:4] == "dial" }) || !slices.Contains(reqs, "hangup leg-1") {
		t.Errorf("requests %q: want no dial, and the leg hung up", reqs)
	}
	if !slices.Equal(gate.acquired, gate.released) {
		t.Errorf("slots acquired %q, released %q", gate.acquired, gate.released)
	}
}

// The policy's counters refuse the number while its create has left: the
// leg is hung up undialled and the list goes on.
func TestCountersRefuseWhileTheCreateLeaves(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	a.announce = true
	gate := &fakeGate{full: map[string]string{"+4930000001": "rate-per-caller"}}
	plan := Plan{Resume: true, Targets: []record.Target{
		{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5},
		{Number: "+4930000002", Dial: "PJSIP/+4930000002@trunk", TimeoutS: 5},
	}}
	call.events = []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-3", State: "Up"}},
		destroyed("leg-3", 16, "Up"),
	}
	res, err := Run(context.Background(), call, testEnv(a), gate, plan, 0)
	if err != nil || res.Outcome != OutcomeSuccess || res.Number != "+4930000002" {
		t.Fatalf("%+v %v; want Success at the second number", res, err)
	}
	reqs := a.requests()
	if slices.Contains(reqs, "dial leg-1 5s") || !slices.Contains(reqs, "hangup leg-1") || !slices.Contains(reqs, "dial leg-3 5s") {
		t.Errorf("requests %q: want leg-1 hung up undialled, leg-3 dialled", reqs)
	}
}
