package transfer

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// Gaps between what the record says and what Asterisk did: a process
// stopped between a write and the request it announces, a request that got
// no answer, an event that went out on a websocket being replaced. Each
// must end at the branch a process that had seen everything would take.

// A record says "dialing", yet the process stopped before the dial left:
// the adopter finds the leg still down long past the ring deadline (a
// dialled leg is ended by Asterisk's dial timeout) and dials the number on
// a new leg, once, instead of taking Timeout or the list's next number.
func TestAdoptedLegNeverDialled(t *testing.T) {
	for _, tc := range []struct {
		name    string
		state   string // the leg at the guard
		outcome Outcome
		number  string
		want    []string
	}{
		{"down: never dialled, dialled now", "Down", OutcomeSuccess, "+4930123456",
			[]string{"hangup leg", "destroy br", "create leg-1 PJSIP/+4930123456@trunk", "dial leg-1 5s"}},
		{"ringing: dialled, its end lost; the list goes on", "Ringing", OutcomeSuccess, "+4930123457",
			[]string{"hangup leg", "destroy br", "create leg-1 PJSIP/+4930123457@trunk", "dial leg-1 5s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, a := adopted(record.StateDialing, nil), newFakeARI()
			a.states["leg"] = tc.state
			a.bridges["br"] = nil
			call.events = []ari.Event{&deadlinePassed{}, &ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
				&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}}, destroyed("leg-1", 16, "Up")}
			env := testEnv(a)
			env.DTMFDelay = time.Hour
			res, err := Adopt(context.Background(), call, env, &fakeGate{})
			if err != nil && err != errNoMoreEvents {
				t.Fatal(err)
			}
			if res.Outcome != tc.outcome || res.Number != tc.number {
				t.Errorf("result %s at %s, want %s at %s", res.Outcome, res.Number, tc.outcome, tc.number)
			}
			for _, w := range tc.want {
				if !slices.Contains(a.requests(), w) {
					t.Errorf("no %q in %q", w, a.requests())
				}
			}
		})
	}
	t.Run("dialled afresh and again not ringing: no second redial", func(t *testing.T) {
		call, a := adopted(record.StateDialing, nil), newFakeARI()
		a.states["leg"] = "Down"
		a.bridges["br"] = nil
		call.events = []ari.Event{&deadlinePassed{}, &ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}, &deadlinePassed{},
			&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}}, destroyed("leg-3", 17, "Down")}
		env := testEnv(a)
		res, err := Adopt(context.Background(), call, env, &fakeGate{})
		if err != nil {
			t.Fatal(err)
		}
		n := len(slices.DeleteFunc(a.requests(), func(r string) bool {
			return r != "create leg-1 PJSIP/+4930123456@trunk" && r != "create leg-3 PJSIP/+4930123456@trunk"
		}))
		if n != 1 || res.Number != "+4930123457" {
			t.Errorf("the number was made %d times, ended at %s (%q); want once, then the next number", n, res.Number, a.requests())
		}
	})
}

// A create that got no answer (the connection cut) may or may not have made
// the leg, and dialled nothing: the ID is hung up and the leg made again
// under a new one, instead of the Error branch.
func TestCreateUnansweredMadeAgain(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	a.failOnce["create"] = []error{errors.New("POST /channels/create: EOF")}
	plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
	call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-3", State: "Up"}}, destroyed("leg-3", 16, "Up")}
	res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
	if err != nil && err != errNoMoreEvents {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeSuccess {
		t.Errorf("outcome %s, want Success", res.Outcome)
	}
	want := []string{"create leg-1 PJSIP/+4930000001@trunk", "hangup leg-1", "create leg-3 PJSIP/+4930000001@trunk", "dial leg-3 5s"}
	got := slices.DeleteFunc(a.requests(), func(r string) bool {
		return !slices.Contains(want, r)
	})
	if !slices.Equal(got, want) {
		t.Errorf("requests %q, want in order %q", got, want)
	}
}

// A made leg whose StasisStart went out on a websocket being replaced:
// when its wait ends, Asterisk is asked. A leg that exists is dialled; one
// that is gone is made again. Neither takes the Error branch.
func TestLegEntryUnseen(t *testing.T) {
	t.Run("the leg exists: dialled", func(t *testing.T) {
		call, a := newFakeCall(), newFakeARI()
		plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
		call.events = []ari.Event{&deadlinePassed{}, &ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}}, destroyed("leg-1", 16, "Up")}
		res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
		if err != nil && err != errNoMoreEvents {
			t.Fatal(err)
		}
		if res.Outcome != OutcomeSuccess || !slices.Contains(a.requests(), "dial leg-1 5s") {
			t.Errorf("outcome %s, requests %q; want leg-1 dialled and Success", res.Outcome, a.requests())
		}
	})
	t.Run("the leg is gone: made again", func(t *testing.T) {
		call, a := newFakeCall(), newFakeARI()
		plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
		a.failOnce["state"] = []error{errNotFound}
		call.events = []ari.Event{&deadlinePassed{}, &ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}},
			&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-3", State: "Up"}}, destroyed("leg-3", 16, "Up")}
		res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
		if err != nil && err != errNoMoreEvents {
			t.Fatal(err)
		}
		if res.Outcome != OutcomeSuccess || !slices.Contains(a.requests(), "dial leg-3 5s") || slices.Contains(a.requests(), "dial leg-1 5s") {
			t.Errorf("outcome %s, requests %q; want leg-3 made and dialled, leg-1 never dialled", res.Outcome, a.requests())
		}
	})
}
