package transfer

import (
	"context"
	"errors"
	"slices"
	"strings"
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

// The same gap, proven by Asterisk at the takeover: the leg's header store
// is still there, so no INVITE ever left. The number is dialled at once on
// a new leg, not after the ring time; a leg whose store is gone (dialled,
// the far end silent) is waited for as before, and never dialled twice.
func TestAdoptedLegProvenUndialled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		undialled bool
		saved     record.TransferState
		want      []string // in order
		never     string
	}{
		{"store there: dialled now", true, record.StateDialing,
			[]string{"state leg", "var leg PJSIP_HEADERS()", "hangup leg", "create leg-1 PJSIP/+4930123456@trunk", "dial leg-1 5s"}, ""},
		{"store gone: dialled, waited for", false, record.StateDialing,
			[]string{"state leg", "var leg PJSIP_HEADERS()"}, "create leg-1 PJSIP/+4930123456@trunk"},
		{"ringing: not asked", true, record.StateRinging,
			[]string{"state leg"}, "var leg PJSIP_HEADERS()"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, a := adopted(tc.saved, nil), newFakeARI()
			a.states["leg"] = "Down"
			a.undialled["leg"] = tc.undialled
			a.bridges["br"] = nil
			call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
				&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}}, destroyed("leg-1", 16, "Up")}
			env := testEnv(a)
			env.DTMFDelay = time.Hour
			if _, err := Adopt(context.Background(), call, env, &fakeGate{}); err != nil && err != errNoMoreEvents {
				t.Fatal(err)
			}
			got := slices.DeleteFunc(a.requests(), func(r string) bool { return !slices.Contains(tc.want, r) })
			if !slices.Equal(got, tc.want) {
				t.Errorf("requests %q, want in order %q", a.requests(), tc.want)
			}
			if tc.never != "" && slices.Contains(a.requests(), tc.never) {
				t.Errorf("requests %q hold %q", a.requests(), tc.never)
			}
		})
	}
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

// Keys that may begin the return key, held back, are not passed on to the
// far end when the event path began anew around them: their partners may
// have gone to the last websocket or the last process, and the far end
// would hear the return key.
func TestReturnKeyHeldAcrossGap(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name      string
		pathSince func() time.Time
		got       time.Time // when the held key arrived
		forwarded bool
	}{
		{"no path change near the key: passed on", func() time.Time { return now.Add(-time.Minute) }, now.Add(-3 * time.Second), true},
		{"no path known: passed on", nil, now.Add(-3 * time.Second), true},
		{"the key came just after the path began: dropped", func() time.Time { return now.Add(-3500 * time.Millisecond) }, now.Add(-3 * time.Second), false},
		{"the path began anew while it was held: dropped", func() time.Time { return now.Add(-time.Second) }, now.Add(-3 * time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, a := newFakeCall(), newFakeARI()
			env := testEnv(a)
			env.PathSince = tc.pathSince
			tr := newTransfer(call, env, &fakeGate{}, Plan{Options: Options{ReturnKey: "**"}})
			tr.leg.id, tr.leg.log = "leg", quiet
			tr.leg.talk.held, tr.leg.talk.heldGot, tr.leg.talk.heldAt = "*", tc.got, tc.got.Add(returnKeyHold)
			tr.due(context.Background())
			if got := slices.Contains(a.requests(), "dtmf leg *"); got != tc.forwarded {
				t.Errorf("passed on: %v, want %v (%q)", got, tc.forwarded, a.requests())
			}
			if tr.leg.talk.held != "" {
				t.Errorf("still held: %q", tr.leg.talk.held)
			}
		})
	}
}

// A key that may begin the return key is not passed on while the event
// path has been silent since its hold ended: a stalled path (ARI frozen,
// the websocket not yet given up) may hold the rest of the return key, and
// a DTMF request sent now would reach the far end once the stall ends.
// The key goes on once the path is heard from again, and is dropped if
// the path begins anew instead.
func TestReturnKeyHeldWhilePathSilent(t *testing.T) {
	for _, tc := range []struct {
		name       string
		afterwards func(now time.Time) (since, heard time.Time) // the path once looked at again
		forwarded  bool
	}{
		{"heard again: passed on", func(now time.Time) (time.Time, time.Time) { return now.Add(-time.Minute), now }, true},
		{"began anew: dropped", func(now time.Time) (time.Time, time.Time) { return now, now }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, a := newFakeCall(), newFakeARI()
			env := testEnv(a)
			now := time.Now()
			since, heard := now.Add(-time.Minute), now.Add(-2500*time.Millisecond) // silent since just after the key
			env.PathSince = func() time.Time { return since }
			env.PathHeard = func() time.Time { return heard }
			pings := 0
			env.PathPing = func() { pings++ }
			tr := newTransfer(call, env, &fakeGate{}, Plan{Options: Options{ReturnKey: "**"}})
			tr.leg.id, tr.leg.log = "leg", quiet
			got := now.Add(-3 * time.Second)
			tr.leg.talk.held, tr.leg.talk.heldGot = "*", got
			tr.leg.talk.heldAt, tr.leg.talk.heldEnd = got.Add(returnKeyHold), got.Add(returnKeyHold)

			tr.due(context.Background())
			if slices.Contains(a.requests(), "dtmf leg *") || tr.leg.talk.held != "*" {
				t.Fatalf("path silent since the hold ended: held %q, requests %q; want still held, nothing sent", tr.leg.talk.held, a.requests())
			}
			if wake := tr.nextWake(); wake.IsZero() || wake.After(time.Now().Add(time.Second)) {
				t.Fatalf("next look at the held key at %v; want soon", wake)
			}
			tr.due(context.Background()) // looked at again, still silent
			if pings != 1 {
				t.Errorf("%d pings asked for; want 1, when the hold ended", pings)
			}

			since, heard = tc.afterwards(time.Now())
			tr.leg.talk.heldAt = time.Now()
			tr.due(context.Background())
			if got := slices.Contains(a.requests(), "dtmf leg *"); got != tc.forwarded {
				t.Errorf("passed on: %v, want %v (%q)", got, tc.forwarded, a.requests())
			}
			if tr.leg.talk.held != "" {
				t.Errorf("still held: %q", tr.leg.talk.held)
			}
		})
	}
}

// The far end's confirmation key may be lost with a websocket that went
// after the far end was asked (during the prompt or the window): the
// confirmation is asked again, once, with a window of its own, instead of
// ending the leg as not answered.
func TestConfirmAskedAgainAfterGap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		since time.Duration // path began this long after the window opened
		again bool
	}{
		{"path began anew in the window: asked again", time.Second, true},
		{"path began anew during the prompt (its key lost with it): asked again", -500 * time.Millisecond, true},
		{"no change: not answered", -time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, a := newFakeCall(), newFakeARI()
			opened := time.Now().Add(-5 * time.Second)
			env := testEnv(a)
			env.PathSince = func() time.Time { return opened.Add(tc.since) }
			tr := newTransfer(call, env, &fakeGate{}, Plan{Targets: []record.Target{{Number: "+4930000001"}},
				Options: Options{Confirm: &Confirm{Prompt: "sound:press-1", Key: "1", Timeout: 3 * time.Second}}})
			tr.leg.id, tr.leg.log = "leg", quiet
			s := &screening{askedAt: opened.Add(-time.Second), opened: opened, until: opened.Add(3 * time.Second)}
			next, err := s.onDeadline(context.Background(), tr)
			if err != nil {
				t.Fatal(err)
			}
			asked := slices.Contains(a.requests(), "play leg sound:press-1")
			if asked != tc.again || (next == s) != tc.again {
				t.Fatalf("asked again %v, still screening %v; want %v (%q)", asked, next == s, tc.again, a.requests())
			}
			if !tc.again {
				return
			}
			// Its own window passes unanswered: not asked a third time.
			s.playing, s.opened, s.until = "", time.Now(), time.Now()
			next, _ = s.onDeadline(context.Background(), tr)
			if next == s || tr.res.Outcome != OutcomeTimeout {
				t.Errorf("after the second window: state %v, outcome %s; want not answered", next, tr.res.Outcome)
			}
		})
	}
}

// A confirmation window that closes while the event path is silent (an
// ARI stall: the far end's key may be in the stalled stream) does not
// conclude: it waits for the path to show life, which delivers the key or
// shows there was none, or to begin anew, which asks again.
func TestConfirmWaitsForSilentPath(t *testing.T) {
	for _, tc := range []struct {
		name       string
		afterwards func(opened, now time.Time) (since, heard time.Time)
		again      bool
	}{
		{"heard again, no key: not answered", func(opened, now time.Time) (time.Time, time.Time) { return opened.Add(-time.Minute), now }, false},
		{"began anew: asked again", func(opened, now time.Time) (time.Time, time.Time) { return now, now }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, a := newFakeCall(), newFakeARI()
			opened := time.Now().Add(-5 * time.Second)
			since, heard := opened.Add(-time.Minute), opened.Add(time.Second) // silent since 1 s into the window
			env := testEnv(a)
			env.PathSince = func() time.Time { return since }
			env.PathHeard = func() time.Time { return heard }
			pings := 0
			env.PathPing = func() { pings++ }
			tr := newTransfer(call, env, &fakeGate{}, Plan{Targets: []record.Target{{Number: "+4930000001"}},
				Options: Options{Confirm: &Confirm{Prompt: "sound:press-1", Key: "1", Timeout: 3 * time.Second}}})
			tr.leg.id, tr.leg.log = "leg", quiet
			s := &screening{askedAt: opened.Add(-time.Second), opened: opened, until: opened.Add(3 * time.Second)}
			for range 2 {
				next, err := s.onDeadline(context.Background(), tr)
				if err != nil || next != s || tr.res.Outcome != "" {
					t.Fatalf("window closed on a silent path: state %v, outcome %q (%v); want still screening", next, tr.res.Outcome, err)
				}
				if s.until.After(time.Now().Add(time.Second)) {
					t.Fatalf("next look at %v; want soon", s.until)
				}
			}
			if pings != 1 || len(a.requests()) != 0 {
				t.Fatalf("%d pings, requests %q; want 1 ping and no request", pings, a.requests())
			}
			since, heard = tc.afterwards(opened, time.Now())
			next, _ := s.onDeadline(context.Background(), tr)
			asked := slices.Contains(a.requests(), "play leg sound:press-1")
			if asked != tc.again || (next == s) != tc.again {
				t.Fatalf("asked again %v, still screening %v; want %v (%q)", asked, next == s, tc.again, a.requests())
			}
			if !tc.again && tr.res.Outcome != OutcomeTimeout {
				t.Errorf("outcome %q; want %q", tr.res.Outcome, OutcomeTimeout)
			}
		})
	}
}

// A key that arrives while the closed window waits for a silent path
// confirms the leg.
func TestConfirmKeyFromStalledPath(t *testing.T) {
	tr, st, _, a := inState(t, record.StateScreening, Options{Confirm: &Confirm{Prompt: "sound:press-1", Key: "1", Timeout: 3 * time.Second}}, true)
	s := st.(*screening)
	opened := time.Now().Add(-5 * time.Second)
	s.playing, s.askedAt, s.opened, s.until = "", opened.Add(-time.Second), opened, opened.Add(3*time.Second)
	tr.env.PathSince = func() time.Time { return opened.Add(-time.Minute) }
	tr.env.PathHeard = func() time.Time { return opened.Add(time.Second) }
	next, err := tr.step(context.Background(), s, nil, ErrDeadline)
	if err != nil || next != s {
		t.Fatalf("window closed on a silent path: state %v (%v); want still screening", stateName(next), err)
	}
	next, err = tr.step(context.Background(), s, evConfirmKey, nil)
	if err != nil || stateName(next) != string(record.StateBridged) {
		t.Errorf("the key from the stalled path: state %v (%v), requests %q; want bridged", stateName(next), err, a.requests())
	}
}

// A screening prompt's PlaybackFinished may go with a websocket that is
// replaced while it plays. Once the event path has begun anew, Asterisk is
// asked (once per path) whether the prompt still plays; one that ended is
// taken as finished, and the confirmation window opens. Without a new
// path nothing is asked, and a prompt still playing at the guard is given
// up.
func TestScreeningPromptEndedUnseen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		renewed bool // the path began after the prompt
		ended   bool // Asterisk says the prompt is gone
		guarded bool // the guard has passed
		asks    int
		opens   bool
		outcome Outcome
	}{
		{"path anew, prompt gone: window opens", true, true, false, 1, true, OutcomeSuccess},
		{"path anew, prompt playing: waits", true, false, false, 1, false, OutcomeSuccess},
		{"same path: not asked", false, true, false, 0, false, OutcomeSuccess},
		{"past the guard: not answered", true, false, true, 0, false, OutcomeTimeout},
		{"path anew, the lookup unanswered: asked at each look", true, false, false, 2, false, OutcomeSuccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, st, _, a := inState(t, record.StateScreening, Options{Confirm: &Confirm{Prompt: "sound:press-1", Key: "1", Timeout: 3 * time.Second}}, true)
			s := st.(*screening)
			played := time.Now().Add(-5 * time.Second)
			if tc.guarded {
				played = time.Now().Add(-screenGuard)
			}
			s.played, s.opened = played, time.Time{}
			since := played.Add(-time.Minute)
			if tc.renewed {
				since = played.Add(time.Second)
			}
			tr.env.PathSince = func() time.Time { return since }
			switch {
			case tc.ended:
				a.fail["playback"] = errNotFound
			case tc.asks == 2:
				a.fail["playback"] = errCut
			}
			for range 2 { // looked after twice on the same path
				next, err := tr.step(context.Background(), s, nil, ErrDeadline)
				if err != nil {
					t.Fatal(err)
				}
				if next != s || !s.opened.IsZero() {
					break
				}
			}
			asks := 0
			for _, r := range a.requests() {
				if strings.HasPrefix(r, "playback ") {
					asks++
				}
			}
			if asks != tc.asks {
				t.Errorf("asked Asterisk %d times about the prompt (%q); want %d", asks, a.requests(), tc.asks)
			}
			if opened := !s.opened.IsZero(); opened != tc.opens {
				t.Errorf("confirmation window opened: %v; want %v", opened, tc.opens)
			}
			if tr.res.Outcome != tc.outcome {
				t.Errorf("outcome %q; want %q", tr.res.Outcome, tc.outcome)
			}
			if !tc.guarded && !tc.opens && s.until.After(time.Now().Add(promptCheck)) {
				t.Errorf("next look at %v; want within %v", s.until, promptCheck)
			}
		})
	}
}

// A screening prompt whose request got no answer may be playing or not:
// the far end is not given up for it. The prompt is looked up at the next
// look, and one that Asterisk does not know is taken as finished.
func TestScreeningPromptUnanswered(t *testing.T) {
	tr, _, _, a := inState(t, record.StateScreening, Options{Confirm: &Confirm{Prompt: "sound:press-1", Key: "1", Timeout: 3 * time.Second}}, true)
	tr.env.PathSince = func() time.Time { return time.Now().Add(-time.Minute) } // the same path throughout
	a.fail["play"] = errCut
	s := &screening{prompts: []string{"sound:press-1"}}
	if err := s.play(context.Background(), tr); err != nil || s.playing == "" {
		t.Fatalf("play without an answer: %v, playing %q; want no error, the prompt taken as maybe playing", err, s.playing)
	}
	a.fail["playback"] = errNotFound
	next, err := tr.step(context.Background(), s, nil, ErrDeadline)
	if err != nil || next != s || s.opened.IsZero() {
		t.Fatalf("looked up, not there: state %v (%v), window opened %v; want the window open", stateName(next), err, !s.opened.IsZero())
	}
	if !slices.ContainsFunc(a.requests(), func(r string) bool { return strings.HasPrefix(r, "playback ") }) {
		t.Errorf("requests %q; want the prompt looked up", a.requests())
	}
}

// A key held back is stamped when it arrives, not when a later key that
// extends the prefix does.
func TestHeldKeyStamped(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	tr := newTransfer(call, testEnv(a), &fakeGate{}, Plan{Options: Options{ReturnKey: "*#*"}})
	tr.leg.id, tr.leg.log = "leg", quiet
	before := time.Now()
	tr.callerKey(context.Background(), "*", 100)
	first := tr.leg.talk.heldGot
	if first.Before(before) || tr.leg.talk.held != "*" {
		t.Fatalf("held %q at %v, want * stamped now", tr.leg.talk.held, first)
	}
	tr.callerKey(context.Background(), "#", 100)
	if tr.leg.talk.held != "*#" || !tr.leg.talk.heldGot.Equal(first) {
		t.Errorf("held %q stamped %v, want *# stamped %v", tr.leg.talk.held, tr.leg.talk.heldGot, first)
	}
}

var errCut = errors.New("Post \"http://pbx/ari/...\": EOF") // a request that got no answer

// A dial that got no answer may have left. The leg is watched as dialled:
// its events say so when it did. A moment later Asterisk is asked: a leg
// whose header store is still there was never dialled, and goes for a new
// one. When Asterisk cannot say, a leg still down long past its ring
// deadline never was dialled, and the number is dialled on a new leg.
func TestDialUnanswered(t *testing.T) {
	plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
	t.Run("it had left: rings, answered", func(t *testing.T) {
		call, a := newFakeCall(), newFakeARI()
		a.failOnce["dial"] = []error{errDialLeft}
		call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
			&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}}, destroyed("leg-1", 16, "Up")}
		res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
		if err != nil && err != errNoMoreEvents {
			t.Fatal(err)
		}
		if res.Outcome != OutcomeSuccess || slices.Contains(a.requests(), "create leg-3 PJSIP/+4930000001@trunk") {
			t.Errorf("outcome %s, requests %q; want Success on leg-1 alone", res.Outcome, a.requests())
		}
	})
	t.Run("it had left, silent so far: asked, waited for", func(t *testing.T) {
		call, a := newFakeCall(), newFakeARI()
		a.failOnce["dial"] = []error{errDialLeft}
		call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}, &deadlinePassed{},
			&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}}, destroyed("leg-1", 16, "Up")}
		res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
		if err != nil && err != errNoMoreEvents {
			t.Fatal(err)
		}
		if res.Outcome != OutcomeSuccess || !slices.Contains(a.requests(), "var leg-1 PJSIP_HEADERS()") || slices.Contains(a.requests(), "hangup leg-1") {
			t.Errorf("outcome %s, requests %q; want leg-1 asked about, kept, Success", res.Outcome, a.requests())
		}
	})
	t.Run("it had not, and Asterisk says so: made again a moment later", func(t *testing.T) {
		call, a := newFakeCall(), newFakeARI()
		a.failOnce["dial"] = []error{errCut}
		call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}, &deadlinePassed{},
			&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}},
			&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-3", State: "Up"}}, destroyed("leg-3", 16, "Up")}
		res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
		if err != nil && err != errNoMoreEvents {
			t.Fatal(err)
		}
		want := []string{"dial leg-1 5s", "var leg-1 PJSIP_HEADERS()", "hangup leg-1", "create leg-3 PJSIP/+4930000001@trunk", "dial leg-3 5s"}
		got := slices.DeleteFunc(a.requests(), func(r string) bool { return !slices.Contains(want, r) })
		if res.Outcome != OutcomeSuccess || !slices.Equal(got, want) {
			t.Errorf("outcome %s, requests %q; want in order %q, Success", res.Outcome, got, want)
		}
	})
	t.Run("it had not, Asterisk cannot say: dialled again once its ring time is over", func(t *testing.T) {
		call, a := newFakeCall(), newFakeARI()
		a.failOnce["dial"] = []error{errCut}
		a.failOnce["var"] = []error{errCut}
		call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}, &deadlinePassed{}, &deadlinePassed{},
			&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-3"}},
			&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-3", State: "Up"}}, destroyed("leg-3", 16, "Up")}
		res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
		if err != nil && err != errNoMoreEvents {
			t.Fatal(err)
		}
		if res.Outcome != OutcomeSuccess || !slices.Contains(a.requests(), "hangup leg-1") || !slices.Contains(a.requests(), "dial leg-3 5s") {
			t.Errorf("outcome %s, requests %q; want leg-1 hung up, leg-3 dialled, Success", res.Outcome, a.requests())
		}
	})
}

// A bridge create that got no answer is made again (a conflict: it was
// made after all), while Asterisk does not answer (chaos run L: a cut
// failed the second try too), not the Error branch.
func TestBridgeCreateUnanswered(t *testing.T) {
	for _, then := range [][]error{{nil}, {&ari.StatusError{Code: 409}}, {errCut, nil}} {
		call, a := newFakeCall(), newFakeARI()
		a.failOnce["bridge"] = append([]error{errCut}, then...)
		second := then
		plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
		call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
			&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}}, destroyed("leg-1", 16, "Up")}
		res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
		if err != nil && err != errNoMoreEvents {
			t.Fatal(err)
		}
		if res.Outcome != OutcomeSuccess {
			t.Errorf("second answer %v: outcome %s (%q), want Success", second, res.Outcome, a.requests())
		}
	}
}

// A digit whose request got no answer may have been played: it counts as
// sent and the next digits go on (a refusal still stops them: the leg is
// hanging up).
func TestDigitUnanswered(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{errCut, []string{"dtmf leg 1", "dtmf leg 2"}},
		{&ari.StatusError{Code: 404}, []string{"dtmf leg 1"}},
	} {
		call, a := newFakeCall(), newFakeARI()
		call.rec.Transfer = &record.Transfer{}
		a.failOnce["dtmf"] = []error{tc.err}
		tr := newTransfer(call, testEnv(a), &fakeGate{}, Plan{Digits: "12"})
		tr.leg.id, tr.leg.log = "leg", quiet
		for range 2 {
			tr.leg.talk.digitAt = time.Now().Add(-time.Second)
			if tr.leg.done < 2 {
				tr.sendNextDigit(context.Background())
			}
		}
		if got := a.requests(); !slices.Equal(got, tc.want) {
			t.Errorf("%v: requests %q, want %q", tc.err, got, tc.want)
		}
	}
}

// The ring time counts from the dial: a leg slow (over a second) to enter
// the app rings for the whole of it, and the record says so.
func TestRingTimeFromTheDial(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
	start := time.Now()
	call.events = []ari.Event{&pause{d: 1100 * time.Millisecond}, &ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}}
	_, _ = Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
	ts := call.rec.Transfer
	if ts == nil || ts.Dialed.Sub(start) < 1100*time.Millisecond || ts.RingDeadline.Sub(ts.Dialed) != 5*time.Second {
		t.Errorf("transfer %+v: want dialled after the entry, ringing 5 s from then", ts)
	}
}

// A block that ends unanswered saves its result before the flow goes on:
// its cause goes with the leg, and a process taking over before the next
// block's write would otherwise guess it (a busy number taken for no
// answer once its ring deadline passed).
func TestUnansweredResultSaved(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
	call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}, destroyed("leg-1", 17, "Down")}
	res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
	if err != nil || res.Outcome != OutcomeCallFailed {
		t.Fatalf("%v %s, want CallFailed", err, res.Outcome)
	}
	ts := call.rec.Transfer
	if ts.State != record.StateEnded || ts.Outcome != string(OutcomeCallFailed) || ts.Cause != 17 || call.saves != 2 {
		t.Fatalf("record %+v after %d saves; want ended, call-failed, cause 17, saved after the dialing write", ts, call.saves)
	}

	// The adopter takes the saved result, asking Asterisk nothing, even
	// with the ring deadline long past.
	adopter, b := newFakeCall(), newFakeARI()
	adopter.rec.Phase, adopter.rec.Transfer = record.PhaseDialing, ts
	ts.RingDeadline = time.Now().Add(-time.Minute)
	got, err := Adopt(context.Background(), adopter, testEnv(b), &fakeGate{})
	if err != nil || got.Outcome != OutcomeCallFailed || got.Cause != 17 {
		t.Errorf("adopted: %v %+v, want CallFailed cause 17", err, got)
	}
	if len(b.requests()) != 0 {
		t.Errorf("adopter sent %q, want nothing", b.requests())
	}
}

// The "dialing" write goes out while the made leg enters the app, not
// after its StasisStart: the two waits overlap on the caller's path. The
// dial still leaves only after both.
func TestDialingWrittenWhileTheLegEnters(t *testing.T) {
	call, a := newFakeCall(), newFakeARI()
	plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
	call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}}
	var before int // events not yet taken when "dialing" was written
	var dialled bool
	call.onPhase = func(p record.Phase) {
		if p == record.PhaseDialing {
			before, dialled = len(call.events), slices.Contains(a.requests(), "dial leg-1 5s")
		}
	}
	_, _ = Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
	if before != 1 || dialled || !slices.Contains(a.requests(), "dial leg-1 5s") {
		t.Errorf("at the write: %d events left, dialled %v; requests %q; want the StasisStart still queued, no dial yet, a dial after", before, dialled, a.requests())
	}
}

// The policy's counters unanswered a moment (a Redis restart): they are
// asked again, and the number dialled, instead of the block's Error. A
// refusal, or counters still unanswered past countPatience, stays final.
func TestCountersAskedAgainWhileRedisIsAway(t *testing.T) {
	plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
	call, a := newFakeCall(), newFakeARI()
	gate := &fakeGate{unavailable: []error{errors.New("admission counters: EOF"), errors.New("admission counters: connection refused")}}
	call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}}, destroyed("leg-1", 16, "Up")}
	res, err := Run(context.Background(), call, testEnv(a), gate, plan, 0)
	if err != nil && err != errNoMoreEvents {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeSuccess || gate.counts != 3 || !slices.Contains(a.requests(), "dial leg-1 5s") {
		t.Errorf("outcome %s after %d counts, requests %q; want Success after 3", res.Outcome, gate.counts, a.requests())
	}
}

// An addChannel that got no answer may have been carried out. It is not
// sent again blindly (a second add of a channel in the bridge takes it out
// and in again, and two at once can lose the caller's absorbDTMF): a
// moment later, only who is missing is added.
func TestJoinUnansweredAddsOnlyWhoIsMissing(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want []string // the adds, in order
	}{
		{"carried out: the leg alone is added", errAddLanded,
			[]string{"add-absorbing br-2 c1", "members br-2", "add br-2 leg-1"}},
		{"lost: both are added", errCut,
			[]string{"add-absorbing br-2 c1", "members br-2", "add-absorbing br-2 c1", "add br-2 leg-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, a := newFakeCall(), newFakeARI()
			a.failOnce["add-absorbing"] = []error{tc.err}
			plan := Plan{Resume: true, Options: Options{ReturnKey: "**"},
				Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
			call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
				&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}}, destroyed("leg-1", 16, "Up")}
			res, err := Run(context.Background(), call, testEnv(a), &fakeGate{}, plan, 0)
			if err != nil && err != errNoMoreEvents {
				t.Fatal(err)
			}
			got := slices.DeleteFunc(a.requests(), func(r string) bool {
				return !strings.HasPrefix(r, "add") && !strings.HasPrefix(r, "members")
			})
			if res.Outcome != OutcomeSuccess || !slices.Equal(got, tc.want) {
				t.Errorf("outcome %s, adds %q; want Success, %q", res.Outcome, got, tc.want)
			}
		})
	}
}
