package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// adopted is a call record a dead process left in state saved, its leg
// "leg" in bridge "br", with the plan's options.
func adopted(saved record.TransferState, opts *record.TransferOptions) *fakeCall {
	call := newFakeCall()
	now := time.Now()
	phase := record.PhaseDialing
	if saved == record.StateBridged {
		phase = record.PhaseBridged
	}
	call.rec.Phase, call.rec.Outbound, call.rec.Bridge, call.rec.Transfers = phase, "leg", "br", 1
	call.rec.Transfer = &record.Transfer{State: saved, Number: "+4930123456", Resume: true, Digits: "12",
		Dialed: now.Add(-time.Second), RingDeadline: now.Add(4 * time.Second), Attempt: 1, Created: true,
		Targets: []record.Target{{Number: "+4930123456", Dial: "PJSIP/+4930123456@trunk", TimeoutS: 5},
			{Number: "+4930123457", Dial: "PJSIP/+4930123457@trunk", TimeoutS: 5}},
		Options: opts}
	if saved == record.StateBridged {
		call.rec.Transfer.Answered = now.Add(-500 * time.Millisecond)
	}
	return call
}

// TestAdoptEntersTheMachine: each saved state against what Asterisk says
// of the leg now. The adopter goes where a process that had watched would
// be: the same machine, entered at the saved state.
func TestAdoptEntersTheMachine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		saved    record.TransferState
		leg      string // its state now; "" gone
		inBridge []string
		events   []ari.Event // what happens next
		outcome  Outcome
		want     []string // requests after the state query
		number   string   // the number the block ended on
		// unordered: the bridge is created alongside the leg
		unordered bool
		noBridge  bool // the last process stopped before it made the bridge
	}{
		{name: "dialing, leg gone: the list goes on with the next number", saved: record.StateDialing, leg: "",
			events:  []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}, destroyed("leg-1", 17, "Down")},
			outcome: OutcomeCallFailed, number: "+4930123457", unordered: true,
			want: []string{"destroy br", "bridge br-2", "create leg-1 PJSIP/+4930123457@trunk", "dial leg-1 5s", "destroy br-2"}},
		{name: "dialing, still ringing: keeps ringing, bridged on answer", saved: record.StateDialing, leg: "Ringing",
			events:  []ari.Event{evAnswer, destroyed("leg", 16, "Up")},
			outcome: OutcomeSuccess, number: "+4930123456",
			want: []string{"add br c1,leg", "destroy br"}},
		{name: "dialing, answered while nobody watched: bridged at once", saved: record.StateDialing, leg: "Up",
			events:  []ari.Event{destroyed("leg", 16, "Up")},
			outcome: OutcomeSuccess, number: "+4930123456",
			want: []string{"add br c1,leg", "destroy br"}},
		{name: "created, the leg exists: dialled now, once", saved: record.StateCreated, leg: "Down",
			events:  []ari.Event{evAnswer, destroyed("leg", 16, "Up")},
			outcome: OutcomeSuccess, number: "+4930123456",
			want: []string{"members br", "dial leg 4s", "add br c1,leg", "destroy br"}},
		{name: "created, never made: made under a new ID and dialled", saved: record.StateCreated, leg: "",
			events:  []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}, &ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}}, destroyed("leg-1", 16, "Up")},
			outcome: OutcomeSuccess, number: "+4930123456",
			want: []string{"members br", "create leg-1 PJSIP/+4930123456@trunk", "dial leg-1 4s", "add br c1,leg-1", "destroy br"}},
		{name: "created, neither leg nor bridge made: both made, then dialled", saved: record.StateCreated, leg: "", noBridge: true,
			events:  []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}, &ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}}, destroyed("leg-1", 16, "Up")},
			outcome: OutcomeSuccess, number: "+4930123456",
			want: []string{"members br", "bridge br", "create leg-1 PJSIP/+4930123456@trunk", "dial leg-1 4s", "add br c1,leg-1", "destroy br"}},
		{name: "bridged, both in the bridge: not added again", saved: record.StateBridged, leg: "Up", inBridge: []string{"c1", "leg"},
			events:  []ari.Event{destroyed("leg", 16, "Up")},
			outcome: OutcomeSuccess, number: "+4930123456",
			want: []string{"members br", "destroy br"}},
		{name: "bridged, the leg not yet in the bridge: added", saved: record.StateBridged, leg: "Up", inBridge: []string{"c1"},
			events:  []ari.Event{destroyed("leg", 16, "Up")},
			outcome: OutcomeSuccess, number: "+4930123456",
			want: []string{"members br", "add br leg", "destroy br"}},
		{name: "bridged, the leg gone: the caller resumes", saved: record.StateBridged, leg: "",
			outcome: OutcomeSuccess, number: "+4930123456",
			want: []string{"destroy br"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, a := adopted(tc.saved, nil), newFakeARI()
			if tc.leg != "" {
				a.states["leg"] = tc.leg
			}
			if !tc.noBridge {
				a.bridges["br"] = tc.inBridge
			}
			call.events = tc.events
			env := testEnv(a)
			env.DTMFDelay = time.Hour // the digits are another test's
			res, err := Adopt(context.Background(), call, env, &fakeGate{})
			if err != nil && err != errNoMoreEvents {
				t.Fatalf("Adopt: %v", err)
			}
			if res.Outcome != tc.outcome || res.Number != tc.number {
				t.Errorf("result %s %s, want %s %s", res.Outcome, res.Number, tc.outcome, tc.number)
			}
			got := slices.DeleteFunc(a.requests(), func(r string) bool { return r == "state leg" || r == "state c1" })
			want := tc.want
			if tc.unordered {
				got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
			}
			if !slices.Equal(got, want) {
				t.Errorf("requests %q\n want %q", got, tc.want)
			}
		})
	}
}

// After a takeover a caller's return key is absorbed as before: the
// adopter adds a missing caller with absorbDTMF, never plainly, and keeps
// the key from the far end.
func TestAdoptKeepsTheReturnKeyFromTheFarEnd(t *testing.T) {
	call, a := adopted(record.StateBridged, &record.TransferOptions{ReturnKey: "*"}), newFakeARI()
	a.states["leg"] = "Up"
	a.bridges["br"] = []string{"leg"} // the caller was not yet in it
	call.events = []ari.Event{evCallerKey}
	env := testEnv(a)
	env.DTMFDelay = time.Hour
	res, err := Adopt(context.Background(), call, env, &fakeGate{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"members br", "add-absorbing br c1", "hangup leg", "destroy br"}
	if got := slices.DeleteFunc(a.requests(), func(r string) bool { return r == "state leg" }); !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q (no dtmf to the leg)", got, want)
	}
	if res.EndedBy != "caller-key" {
		t.Errorf("ended by %q", res.EndedBy)
	}
}

// An ARI error while adopting is tried again, and one that persists takes
// the block's Error branch: the caller is never hung up for it.
func TestAdoptRetriesARI(t *testing.T) {
	t.Run("a 503 then an answer", func(t *testing.T) {
		call, a := adopted(record.StateBridged, nil), newFakeARI()
		a.states["leg"] = "Up"
		a.bridges["br"] = []string{"c1", "leg"}
		a.failOnce["state"] = []error{&ari.StatusError{Code: 503}, &ari.StatusError{Code: 503}}
		call.events = []ari.Event{destroyed("leg", 16, "Up")}
		env := testEnv(a)
		env.Retry = Backoff{Tries: 3, First: time.Millisecond}
		env.DTMFDelay = time.Hour
		res, err := Adopt(context.Background(), call, env, &fakeGate{})
		if err != nil || res.Outcome != OutcomeSuccess {
			t.Fatalf("%v %s, want Success", err, res.Outcome)
		}
	})
	t.Run("Asterisk never answers", func(t *testing.T) {
		call, a := adopted(record.StateBridged, nil), newFakeARI()
		a.fail["state"] = &ari.StatusError{Code: 503}
		env := testEnv(a)
		env.Retry = Backoff{Tries: 3, First: time.Millisecond}
		res, err := Adopt(context.Background(), call, env, &fakeGate{})
		if err != nil || res.Outcome != OutcomeError {
			t.Fatalf("%v %s, want the Error outcome", err, res.Outcome)
		}
		if n := slices.Index(a.requests(), "hangup c1"); n >= 0 {
			t.Errorf("caller hung up: %q", a.requests())
		}
		if got := a.requests(); got[0] != "state leg" || got[2] != "state leg" || len(slices.DeleteFunc(slices.Clone(got), func(r string) bool { return r != "state leg" })) != 3 {
			t.Errorf("requests %q, want three tries", got)
		}
	})
}

// The concurrency slot of a leg is given back when the leg ends, and kept
// when the process stops and leaves the call to the next one (else each
// rolling deploy would double the cap for a while).
func TestSlotKeptWhenLeavingTheCall(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stop    bool
		release bool
	}{{"leg ended", false, true}, {"process stops", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			call, a := adopted(record.StateBridged, nil), newFakeARI()
			a.states["leg"] = "Up"
			a.bridges["br"] = []string{"c1", "leg"}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.stop {
				cancel()
			} else {
				call.events = []ari.Event{destroyed("leg", 16, "Up")}
			}
			g := &fakeGate{}
			env := testEnv(a)
			env.DTMFDelay = time.Hour
			_, _ = Adopt(ctx, call, env, g)
			if got := len(g.released) == 1 && g.released[0] == "c1:0"; got != tc.release {
				t.Errorf("released %q, want released: %v", g.released, tc.release)
			}
		})
	}
}

// The far end hangs up as the call is taken over bridged: it is no longer
// in the bridge, and Asterisk refuses to add it back (422); by the time
// the adopter looks, it is gone. The caller resumes at Success, as if the
// adopter had seen the hangup, never the Error branch.
func TestAdoptBridgedFarEndGoneMeanwhile(t *testing.T) {
	call, a := adopted(record.StateBridged, nil), newFakeARI()
	a.states["leg"] = "Up"
	a.bridges["br"] = []string{"c1"}
	a.fail["add"] = &ari.StatusError{Code: 422, Message: "Channel not in Stasis application"}
	a.failOnce["state"] = []error{nil, errNotFound} // up when first asked, gone after
	env := testEnv(a)
	env.Retry = Backoff{Tries: 1}
	res, err := Adopt(context.Background(), call, env, &fakeGate{})
	if err != nil || res.Outcome != OutcomeSuccess || res.EndedBy != "far-end" {
		t.Fatalf("%+v %v; want Success ended by the far end", res, err)
	}
}

// The far end hangs up as the call is taken over bridged, and the adopter
// looks while Asterisk tears its channel down: it has left the app (422)
// but still exists. It is the far end's hangup all the same: the caller
// resumes at Success, and the leg is hung up, should it linger.
func TestAdoptBridgedFarEndLeavingMeanwhile(t *testing.T) {
	for _, code := range []int{400, 422} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			call, a := adopted(record.StateBridged, nil), newFakeARI()
			a.states["leg"] = "Up" // exists on every look
			a.bridges["br"] = []string{"c1"}
			a.fail["add"] = &ari.StatusError{Code: code, Message: "Channel not in Stasis application"}
			env := testEnv(a)
			env.Retry = Backoff{Tries: 1}
			res, err := Adopt(context.Background(), call, env, &fakeGate{})
			if err != nil || res.Outcome != OutcomeSuccess || res.EndedBy != "far-end" {
				t.Fatalf("%+v %v; want Success ended by the far end", res, err)
			}
			if !slices.Contains(a.requests(), "hangup leg") || !slices.Contains(a.requests(), "destroy br") {
				t.Errorf("requests %q: the leg and bridge must go", a.requests())
			}
		})
	}
	t.Run("a refusal with the caller gone", func(t *testing.T) {
		call, a := adopted(record.StateBridged, nil), newFakeARI()
		a.states["leg"] = "Up"
		delete(a.states, "c1")
		a.bridges["br"] = []string{"leg"}
		a.fail["add"] = &ari.StatusError{Code: 422}
		env := testEnv(a)
		env.Retry = Backoff{Tries: 1}
		if _, err := Adopt(context.Background(), call, env, &fakeGate{}); !errors.Is(err, ErrCallerGone) {
			t.Fatalf("%v, want ErrCallerGone", err)
		}
		if !slices.Contains(a.requests(), "hangup leg") {
			t.Errorf("requests %q: the leg must go", a.requests())
		}
	})
	t.Run("Asterisk failing otherwise: the Error branch", func(t *testing.T) {
		call, a := adopted(record.StateBridged, nil), newFakeARI()
		a.states["leg"] = "Up"
		a.bridges["br"] = []string{"c1"}
		a.fail["add"] = &ari.StatusError{Code: 409}
		env := testEnv(a)
		env.Retry = Backoff{Tries: 1}
		res, err := Adopt(context.Background(), call, env, &fakeGate{})
		if err != nil || res.Outcome != OutcomeError {
			t.Fatalf("%+v %v; want the Error outcome", res, err)
		}
	})
}
