package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// Events the table feeds the machine.
var (
	evAnswer       = &ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg", State: "Up"}}
	evOldAnswer    = &ari.StasisStart{Channel: ari.ChannelData{ID: "leg", State: "Up"}}
	evRinging      = &ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg", State: "Ringing"}}
	evDialRinging  = &ari.Dial{Peer: ari.ChannelData{ID: "leg"}, Dialstatus: "RINGING"}
	evBusy         = destroyed("leg", 17, "Down")
	evUpAndGone    = destroyed("leg", 16, "Up")
	evHangupReq    = hangupRequest("leg", 16)
	evLegEnd       = &ari.StasisEnd{Channel: ari.ChannelData{ID: "leg"}}
	evCallerKey    = &ari.ChannelDtmfReceived{Channel: ari.ChannelData{ID: "c1"}, Digit: "*", DurationMs: 100}
	evConfirmKey   = &ari.ChannelDtmfReceived{Channel: ari.ChannelData{ID: "leg"}, Digit: "1", DurationMs: 100}
	evPromptDone   = &ari.PlaybackFinished{Playback: ari.PlaybackData{ID: "screen-pb", State: "done"}}
	evOtherChannel = &ari.ChannelStateChange{Channel: ari.ChannelData{ID: "other", State: "Up"}}
)

func hangupRequest(id string, cause int) *ari.ChannelHangupRequest {
	e := &ari.ChannelHangupRequest{}
	e.Type, e.Channel.ID, e.Cause = "ChannelHangupRequest", id, cause
	return e
}

func destroyed(id string, cause int, state string) *ari.ChannelDestroyed {
	e := ari.NewChannelDestroyed(id, cause, "")
	e.Channel.State = state
	return e
}

// inState builds a transfer of one number ("leg" in bridge "br") in the
// named state, as if it had just got there.
func inState(t *testing.T, name record.TransferState, opts Options, resume bool) (*Transfer, state, *fakeCall, *fakeARI) {
	t.Helper()
	call, a := newFakeCall(), newFakeARI()
	plan := Plan{Targets: []record.Target{{Number: "+4930123456", Dial: "PJSIP/+4930123456@trunk", TimeoutS: 5}},
		Resume: resume, Options: opts, Digits: "12"}
	tr := newTransfer(call, testEnv(a), &fakeGate{}, plan)
	now := time.Now()
	tr.leg = leg{id: "leg", bridge: "br", target: plan.Targets[0], dialed: now.Add(-time.Second), deadline: now.Add(4 * time.Second), log: quiet, slot: "c1:0"}
	tr.res = Result{Number: plan.Targets[0].Number}
	call.rec.Outbound, call.rec.Bridge = "leg", "br"
	call.rec.Transfer = tr.persisted(record.StateDialing)
	call.rec.Phase = record.PhaseDialing
	a.states["leg"] = "Down"
	var s state
	switch name {
	case record.StateDialing:
		s = &dialing{}
	case record.StateRinging:
		s = &dialing{ringing: true}
		a.states["leg"] = "Ringing"
	case record.StateScreening:
		tr.answer()
		a.states["leg"] = "Up"
		s = &screening{playing: "screen-pb", until: now.Add(time.Minute)}
	case record.StateBridged:
		tr.answer()
		a.states["leg"] = "Up"
		call.rec.Phase, call.rec.Transfer.State = record.PhaseBridged, record.StateBridged
		s = tr.talk()
	default:
		t.Fatalf("no state %s", name)
	}
	return tr, s, call, a
}

// TestMachine is every state against every event: where it leads, how the
// transfer ends there, and what it asks of Asterisk.
func TestMachine(t *testing.T) {
	confirm := Options{Confirm: &Confirm{Prompt: "sound:press-1", Key: "1", Timeout: 5 * time.Second}}
	returnKey := Options{ReturnKey: "*"}
	const (
		stay = "stay"
		end  = ""
	)
	type row struct {
		state   record.TransferState
		opts    Options
		resume  bool
		event   ari.Event
		nextErr error // instead of an event: ErrCallerGone, ErrDeadline
		next    string
		outcome Outcome
		err     error
		want    []string // requests, in order
		endedBy string
	}
	dialingRows := func(s record.TransferState) []row {
		ringingNext := string(record.StateRinging)
		return []row{
			{state: s, event: evAnswer, resume: true, next: string(record.StateBridged), outcome: OutcomeSuccess, want: []string{"add br c1,leg"}},
			{state: s, event: evOldAnswer, resume: true, next: string(record.StateBridged), outcome: OutcomeSuccess, want: []string{"add br c1,leg"}},
			{state: s, opts: confirm, event: evAnswer, next: string(record.StateScreening), outcome: OutcomeSuccess, want: []string{"play leg sound:press-1"}},
			{state: s, event: evRinging, next: ringingNext},
			{state: s, event: evDialRinging, next: ringingNext},
			{state: s, event: evBusy, next: end, outcome: OutcomeCallFailed, want: []string{"destroy br"}},
			{state: s, event: evUpAndGone, resume: true, next: end, outcome: OutcomeSuccess, want: []string{"destroy br"}, endedBy: flows.EndedByFarEnd},
			{state: s, event: evUpAndGone, resume: false, next: end, outcome: OutcomeSuccess, err: ErrHandedOff, want: []string{"destroy br", "hangup c1"}, endedBy: flows.EndedByFarEnd},
			{state: s, event: evHangupReq, next: stay},
			{state: s, event: evLegEnd, next: stay},
			{state: s, nextErr: ErrCallerGone, next: end, outcome: OutcomeCallFailed, err: ErrCallerGone, want: []string{"hangup leg", "destroy br"}},
			{state: s, nextErr: ErrDeadline, next: end, outcome: OutcomeTimeout, want: []string{"hangup leg", "destroy br"}},
			{state: s, event: evCallerKey, next: stay},
			{state: s, event: evConfirmKey, next: stay},
			{state: s, event: evOtherChannel, next: stay},
		}
	}
	rows := append(dialingRows(record.StateDialing), dialingRows(record.StateRinging)...)
	rows = append(rows,
		row{state: record.StateScreening, opts: confirm, event: evAnswer, next: stay, outcome: OutcomeSuccess},
		row{state: record.StateScreening, opts: confirm, event: evConfirmKey, resume: true, next: string(record.StateBridged), outcome: OutcomeSuccess,
			want: []string{"stopplay screen-pb", "add br c1,leg"}},
		row{state: record.StateScreening, opts: confirm, event: evPromptDone, next: stay, outcome: OutcomeSuccess},
		row{state: record.StateScreening, opts: confirm, event: evBusy, next: end, outcome: OutcomeTimeout, want: []string{"destroy br"}},
		row{state: record.StateScreening, opts: confirm, event: evHangupReq, next: end, outcome: OutcomeTimeout, want: []string{"destroy br"}},
		row{state: record.StateScreening, opts: confirm, event: evLegEnd, next: end, outcome: OutcomeTimeout, want: []string{"destroy br"}},
		row{state: record.StateScreening, opts: confirm, nextErr: ErrCallerGone, next: end, outcome: OutcomeCallFailed, err: ErrCallerGone, want: []string{"hangup leg", "destroy br"}},
		row{state: record.StateScreening, opts: confirm, nextErr: ErrDeadline, next: end, outcome: OutcomeTimeout, want: []string{"hangup leg", "destroy br"}},
		row{state: record.StateScreening, opts: confirm, event: evCallerKey, next: stay, outcome: OutcomeSuccess},
		row{state: record.StateScreening, opts: confirm, event: evOtherChannel, next: stay, outcome: OutcomeSuccess},

		row{state: record.StateBridged, event: evAnswer, next: stay, outcome: OutcomeSuccess},
		row{state: record.StateBridged, event: evBusy, resume: true, next: end, outcome: OutcomeSuccess, want: []string{"destroy br"}, endedBy: flows.EndedByFarEnd},
		row{state: record.StateBridged, event: evHangupReq, resume: true, next: end, outcome: OutcomeSuccess, want: []string{"destroy br"}, endedBy: flows.EndedByFarEnd},
		row{state: record.StateBridged, event: evLegEnd, resume: true, next: end, outcome: OutcomeSuccess, want: []string{"destroy br"}, endedBy: flows.EndedByFarEnd},
		row{state: record.StateBridged, event: evHangupReq, resume: false, next: end, outcome: OutcomeSuccess, err: ErrHandedOff, want: []string{"destroy br", "hangup c1"}, endedBy: flows.EndedByFarEnd},
		row{state: record.StateBridged, nextErr: ErrCallerGone, next: end, outcome: OutcomeSuccess, err: ErrCallerGone, want: []string{"hangup leg", "destroy br"}, endedBy: flows.EndedByCaller},
		row{state: record.StateBridged, opts: returnKey, event: evCallerKey, resume: true, next: end, outcome: OutcomeSuccess, want: []string{"hangup leg", "destroy br"}, endedBy: flows.EndedByCallerKey},
		row{state: record.StateBridged, event: evCallerKey, next: stay, outcome: OutcomeSuccess},
		row{state: record.StateBridged, event: evConfirmKey, next: stay, outcome: OutcomeSuccess},
		row{state: record.StateBridged, event: evOtherChannel, next: stay, outcome: OutcomeSuccess},
	)
	for _, r := range rows {
		name := fmt.Sprintf("%s/%T", r.state, r.event)
		if r.nextErr != nil {
			name = fmt.Sprintf("%s/%v", r.state, r.nextErr)
		}
		t.Run(name, func(t *testing.T) {
			tr, s, _, a := inState(t, r.state, r.opts, r.resume)
			before := s.name()
			got, err := tr.step(context.Background(), s, r.event, r.nextErr)
			if !errors.Is(err, r.err) || (err != nil) != (r.err != nil) {
				t.Fatalf("error %v, want %v", err, r.err)
			}
			switch {
			case r.next == stay && (got == nil || got.name() != before):
				t.Errorf("went to %v, want to stay in %s", stateName(got), before)
			case r.next != stay && stateName(got) != r.next:
				t.Errorf("went to %v, want %q", stateName(got), r.next)
			}
			if tr.res.Outcome != r.outcome {
				t.Errorf("outcome %q, want %q", tr.res.Outcome, r.outcome)
			}
			if tr.res.EndedBy != r.endedBy {
				t.Errorf("ended by %q, want %q", tr.res.EndedBy, r.endedBy)
			}
			if reqs := a.requests(); !slices.Equal(reqs, r.want) && !(len(reqs) == 0 && len(r.want) == 0) {
				t.Errorf("requests %q, want %q", reqs, r.want)
			}
		})
	}
}

func stateName(s state) string {
	if s == nil {
		return ""
	}
	return string(s.name())
}

// TestUnseenLegEnd: a leg whose end went unseen (cause 0) failed while its
// dial timeout ran, and was not answered once it had passed.
func TestUnseenLegEnd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		past    bool
		want    Outcome
		wantCau int
	}{
		{"within the ring timeout", false, OutcomeCallFailed, 0},
		{"past the ring timeout", true, OutcomeTimeout, CauseNoAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, s, _, _ := inState(t, record.StateRinging, Options{}, true)
			if tc.past {
				tr.leg.deadline = time.Now().Add(-time.Second)
			}
			if _, err := tr.step(context.Background(), s, destroyed("leg", 0, "Ringing"), nil); err != nil {
				t.Fatal(err)
			}
			if tr.res.Outcome != tc.want || tr.res.Cause != tc.wantCau {
				t.Errorf("outcome %q cause %d, want %q cause %d", tr.res.Outcome, tr.res.Cause, tc.want, tc.wantCau)
			}
		})
	}
}
