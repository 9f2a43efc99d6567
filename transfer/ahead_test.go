package transfer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// aheadFakeCall is a fake call that keeps a leg made ahead as the
// controller's call does: it takes that leg's events while it keeps it.
type aheadFakeCall struct {
	*fakeCall
	env     *Env
	next    Plan
	hasNext bool
	kept    *Ahead
}

func (c *aheadFakeCall) NextPlan() (Plan, bool) { return c.next, c.hasNext }
func (c *aheadFakeCall) KeepAhead(a *Ahead) {
	if c.kept != nil {
		c.kept.Drop(c, c.env, "newer")
	}
	c.kept = a
}
func (c *aheadFakeCall) TakeAhead() *Ahead {
	a := c.kept
	c.kept = nil
	return a
}
func (c *aheadFakeCall) Next(ctx context.Context, deadline time.Time) (ari.Event, error) {
	for {
		ev, err := c.fakeCall.Next(ctx, deadline)
		if err != nil || c.kept == nil || !c.kept.Observe(ev) {
			return ev, err
		}
	}
}

func target(n string) record.Target {
	return record.Target{Number: n, Dial: "PJSIP/" + n + "@trunk", TimeoutS: 5}
}

// aheadRun runs a resuming transfer to +4930000001 (leg-1, br-2) that is
// answered, talks until its deadline has made the next leg (leg-3) ahead,
// and is hung up by the far end; then the next transfer with plan second.
// during are events that come while the first talks, after the next leg
// entered the app.
func aheadRun(t *testing.T, env *Env, a *fakeARI, next, second Plan, during, events []ari.Event) (*aheadFakeCall, Result) {
	t.Helper()
	call := &aheadFakeCall{fakeCall: newFakeCall(), env: env, next: next, hasNext: true}
	first := Plan{Resume: true, Targets: []record.Target{target("+4930000001")}}
	call.events = []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}},
		&deadlinePassed{}, // the talk's first wake: the next leg is made
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}},
	}
	call.events = append(append(call.events, during...), destroyed("leg-1", 16, "Up"))
	if res, err := Run(context.Background(), call, env, &fakeGate{}, first, 0); err != nil || res.Outcome != OutcomeSuccess {
		t.Fatalf("first transfer: %+v %v", res, err)
	}
	call.events = events
	res, err := Run(context.Background(), call, env, &fakeGate{}, second, 0)
	if err != nil {
		t.Fatalf("second transfer: %v", err)
	}
	return call, res
}

// The next transfer's leg is made while the first talks, and the next
// transfer dials it without a create of its own: its record names it,
// "dialing", before the dial.
func TestLegMadeAheadIsDialled(t *testing.T) {
	a := newFakeARI()
	env := testEnv(a)
	env.LegAhead = true
	next := Plan{Resume: true, Targets: []record.Target{target("+4930000009")}}
	call, res := aheadRun(t, env, a, next, next, nil, []ari.Event{
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-3", State: "Up"}},
		destroyed("leg-3", 16, "Up"),
	})
	if res.Outcome != OutcomeSuccess || res.Number != "+4930000009" {
		t.Errorf("second transfer %+v; want Success at +4930000009", res)
	}
	reqs := a.requests()
	creates := slices.DeleteFunc(slices.Clone(reqs), func(r string) bool { return !strings.HasPrefix(r, "create ") })
	if !slices.Equal(creates, []string{"create leg-1 PJSIP/+4930000001@trunk", "create leg-3 PJSIP/+4930000009@trunk"}) {
		t.Errorf("creates %q; want the first leg's and the one made ahead only", creates)
	}
	made, dialled := slices.Index(reqs, "create leg-3 PJSIP/+4930000009@trunk"), slices.Index(reqs, "dial leg-3 5s")
	if made < 0 || dialled < 0 || slices.Index(reqs, "dial leg-1 5s") > made {
		t.Errorf("requests %q; want leg-3 made while the first talked, then dialled", reqs)
	}
	if slices.Contains(reqs, "hangup leg-3") && slices.Index(reqs, "hangup leg-3") < dialled {
		t.Errorf("the leg made ahead was hung up before its dial: %q", reqs)
	}
	if call.rec.Transfers != 2 || call.kept != nil {
		t.Errorf("transfers %d, kept %v; want 2 and none (the second made none: its plan resumes, but NextPlan is for the first)", call.rec.Transfers, call.kept)
	}
}

// The next transfer would make another leg (its plan resolved otherwise
// at its start): the leg made ahead is hung up, and it makes its own.
func TestLegMadeAheadForAnotherPlanGoes(t *testing.T) {
	a := newFakeARI()
	env := testEnv(a)
	env.LegAhead = true
	next := Plan{Resume: true, Targets: []record.Target{target("+4930000009")}}
	other := Plan{Resume: true, Targets: []record.Target{target("+4930000009")}, CallerIDNumber: "+4930111111"}
	_, res := aheadRun(t, env, a, next, other, nil, []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-4"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-4", State: "Up"}},
		destroyed("leg-4", 16, "Up"),
	})
	reqs := a.requests()
	if res.Outcome != OutcomeSuccess || !slices.Contains(reqs, "hangup leg-3") || !slices.Contains(reqs, "create leg-4 PJSIP/+4930000009@trunk") ||
		slices.Contains(reqs, "dial leg-3 5s") {
		t.Errorf("%+v, requests %q; want leg-3 hung up undialled and leg-4 made and dialled", res, reqs)
	}
}

// The leg made ahead ended before the next transfer began (its end seen):
// the transfer makes its own, and asks nothing about the old one.
func TestLegMadeAheadEndedIsNotUsed(t *testing.T) {
	a := newFakeARI()
	env := testEnv(a)
	env.LegAhead = true
	next := Plan{Resume: true, Targets: []record.Target{target("+4930000009")}}
	_, res := aheadRun(t, env, a, next, next, []ari.Event{destroyed("leg-3", 16, "Down")}, []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-4"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-4", State: "Up"}},
		destroyed("leg-4", 16, "Up"),
	})
	reqs := a.requests()
	if res.Outcome != OutcomeSuccess || slices.Contains(reqs, "dial leg-3 5s") || !slices.Contains(reqs, "dial leg-4 5s") {
		t.Errorf("%+v, requests %q; want leg-4 made and dialled, leg-3 left alone", res, reqs)
	}
}

// The leg made ahead ended unseen (its end still queued, or lost): its
// dial finds it gone (404), and the transfer makes its leg again.
func TestLegMadeAheadGoneAtItsDial(t *testing.T) {
	a := newFakeARI()
	a.failOnce["dial"] = []error{nil, errNotFound}
	env := testEnv(a)
	env.LegAhead = true
	next := Plan{Resume: true, Targets: []record.Target{target("+4930000009")}}
	_, res := aheadRun(t, env, a, next, next, nil, []ari.Event{
		destroyed("leg-3", 16, "Down"),
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-5"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-5", State: "Up"}},
		destroyed("leg-5", 16, "Up"),
	})
	reqs := a.requests()
	if res.Outcome != OutcomeSuccess || !slices.Contains(reqs, "dial leg-3 5s") || !slices.Contains(reqs, "dial leg-5 5s") {
		t.Errorf("%+v, requests %q; want leg-3's dial refused, then leg-5 made and dialled", res, reqs)
	}
}

// The create of the leg made ahead was refused: the next transfer makes
// its leg again under a new ID, named in the record before it is made.
func TestLegMadeAheadRefusedIsMadeAgain(t *testing.T) {
	a := newFakeARI()
	a.failOnce["create"] = []error{nil, &ari.StatusError{Code: 400, Status: "400 Bad Request"}}
	env := testEnv(a)
	env.LegAhead = true
	next := Plan{Resume: true, Targets: []record.Target{target("+4930000009")}}
	// leg-3 made ahead (refused), br-4 the second transfer's bridge, leg-5
	// its leg made again.
	call, res := aheadRun(t, env, a, next, next, nil, []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-5"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-5", State: "Up"}},
		destroyed("leg-5", 16, "Up"),
	})
	reqs := a.requests()
	if res.Outcome != OutcomeSuccess || slices.Contains(reqs, "dial leg-3 5s") || !slices.Contains(reqs, "dial leg-5 5s") {
		t.Errorf("%+v, requests %q; want leg-5 made and dialled", res, reqs)
	}
	if call.owned["leg-3"] {
		t.Error("the refused leg is still owned by the call")
	}
}

// With the setting off, no leg is made ahead.
func TestLegAheadOff(t *testing.T) {
	a := newFakeARI()
	env := testEnv(a)
	next := Plan{Resume: true, Targets: []record.Target{target("+4930000009")}}
	_, res := aheadRun(t, env, a, next, next, nil, []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-3", State: "Up"}},
		destroyed("leg-3", 16, "Up"),
	})
	reqs := a.requests()
	if res.Outcome != OutcomeSuccess || slices.Index(reqs, "create leg-3 PJSIP/+4930000009@trunk") < slices.Index(reqs, "destroy br-2") {
		t.Errorf("%+v, requests %q; want leg-3 made by the second transfer, after the first ended", res, reqs)
	}
}
