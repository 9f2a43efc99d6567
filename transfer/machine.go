// Package transfer runs the transfer blocks' outbound legs: dial a number
// (or an agent's endpoint) with the caller ID set, bridge it with the
// caller once answered, send the digits, and end when either side hangs
// up. Each run is a state machine (dialing, ringing, screening, bridged)
// whose state is saved with the call's record before the side effects that
// depend on it; a process taking a call over enters the same machine at
// the state the record names (Adopt). The package owns the outbound leg,
// its bridge and its concurrency slot. It does not touch the flow, the
// store or the websocket: it reaches the call through the Call interface.
package transfer

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
)

// Outcomes of a transfer that end the call's flow rather than take a
// branch.
var (
	// ErrCallerGone: the caller hung up; the call is over.
	ErrCallerGone = errors.New("caller hung up")
	// ErrHandedOff: the caller left the flow for good (resume off).
	ErrHandedOff = errors.New("caller handed off")
	// ErrDeadline is what Call.Next returns when its deadline passed.
	ErrDeadline = errors.New("deadline passed")
)

// PathRenewed is what a call hands its transfer once the event path has
// been made again (a reconnect) while its leg exists and is down in the
// dialing phase: the leg's StasisStart may have gone out on the socket
// being replaced, and would then never come. A transfer waiting for it
// dials at once (a leg not yet in the app refuses the dial, and its
// StasisStart is then still to come); every other state ignores it.
type PathRenewed struct {
	ari.EventData
	Leg string
}

func (*PathRenewed) Keys() ari.Keys { return nil }

// Call is what a transfer needs of the call it runs in. Its methods are
// called from the call's own goroutine only.
type Call interface {
	// ID is the caller's channel.
	ID() string
	// Record is the call's record; the transfer keeps its part of it
	// (Outbound, Bridge, Transfer, Transfers) up to date.
	Record() *record.Call
	// SetPhase moves the call to phase p (a checked transition) and
	// writes the record.
	SetPhase(ctx context.Context, p record.Phase) error
	// Save writes the record.
	Save(ctx context.Context) error
	// Next returns the call's next event. It returns an error wrapping
	// ErrCallerGone once the caller has left, ErrDeadline when deadline
	// (if not zero) passed first, and any other error when the call cannot
	// wait any more (the process stops, its events overflowed).
	Next(ctx context.Context, deadline time.Time) (ari.Event, error)
	// Own routes the events of ids (legs, bridges, playbacks) to the
	// call; Disown stops that.
	Own(ids ...string)
	Disown(ids ...string)
	// Log is the call's logger (call_id, channel, flow).
	Log() *logrus.Entry
	// Later runs f off the call's path (bookkeeping the caller need not
	// wait for); the call's end waits for it, and so does Settle.
	Later(f func(ctx context.Context))
	// Settle waits for what Later runs.
	Settle()
}

// ARI is the part of Asterisk's REST interface a transfer uses; it is
// satisfied by *ari.Client.
type ARI interface {
	Create(ctx context.Context, req ari.CreateRequest) error
	Dial(ctx context.Context, id string, timeout time.Duration) error
	Hangup(ctx context.Context, id, reason string) error
	ChannelState(ctx context.Context, id string) (string, error)
	Variable(ctx context.Context, id, name string) (string, error)
	ChannelExists(ctx context.Context, id string) (bool, error)
	CreateBridge(ctx context.Context, id, name string) error
	CreateBridgeDTMFEvents(ctx context.Context, id, name string) error
	BridgeChannels(ctx context.Context, id string) ([]string, error)
	AddToBridgeWith(ctx context.Context, bridge string, join ari.BridgeJoin, channels ...string) error
	DestroyBridge(ctx context.Context, id string) error
	Answer(ctx context.Context, id string) error
	Ring(ctx context.Context, id string) error
	StopRing(ctx context.Context, id string) error
	StartMOH(ctx context.Context, id, class string) error
	StopMOH(ctx context.Context, id string) error
	Play(ctx context.Context, channel, playbackID, media string) error
	StopPlayback(ctx context.Context, playbackID string) error
	PlaybackExists(ctx context.Context, playbackID string) (bool, error)
	SendDTMF(ctx context.Context, id, digits string, between, duration time.Duration) error
}

// Gate is the dial-out policy: every number is admitted by it before it is
// dialled, and its concurrency slot given back once the leg has ended
// (satisfied by *policy.Gate).
type Gate interface {
	// Check applies the rules that count nothing (no round trip).
	Check(leg policy.Leg) error
	// Count counts the leg against the rates and the concurrency cap.
	Count(ctx context.Context, leg policy.Leg) (release func(), err error)
	// Release gives counted legs' slots back, in one step.
	Release(ctx context.Context, slots ...string) error
}

// Metrics are the transfer's own counters; nil fields count nothing.
type Metrics struct {
	Stuck  *prometheus.CounterVec // waits past their bound, by what was awaited
	Denied *prometheus.CounterVec // numbers the dial policy refused, by rule
}

// Env is what every transfer of a process shares.
type Env struct {
	ARI ARI
	// App is the Stasis application the legs are made in.
	App string
	// NewID names a leg, bridge or playback of this app.
	NewID func(kind string) string
	// DTMFDelay is how long after the far end answers the digits are sent.
	DTMFDelay time.Duration
	// InAppWait bounds the wait for a made leg's StasisStart.
	InAppWait time.Duration
	// LegEvents sends a leg's events to a block's events_url without
	// waiting (nil: none are sent).
	LegEvents func(url, key string, ev *LegEvent, log *logrus.Entry)
	Metrics   Metrics
	// Observer is told of every transfer's states and end (nil: none).
	Observer Observer
	// Retry bounds how often an ARI request that failed for want of an
	// answer (not a refusal) is tried when adopting a transfer.
	Retry Backoff
	// PathSince is when the event path the call's events come by began
	// (this process's websocket opened): events before it may have been
	// lost, or gone to another process. Nil: never.
	PathSince func() time.Time
	// PathHeard is when the event path last received anything (an
	// event, a pong): one silent for a while may be stalled, the events
	// since in it. Nil: always just now.
	PathHeard func() time.Time
	// PathPing has the event path pinged now, so that a live one is
	// heard from within a round trip. Nil: none.
	PathPing func()
	// LegAhead: a transfer that resumes the caller makes the leg of the
	// transfer its Success branch leads to while it talks (ahead.go).
	LegAhead bool
	// Written is how long after a record write began the request it
	// announces may leave without the local lease check (the lease's
	// lifetime; 0: always checked). See ari.Written.
	Written time.Duration
}

// LegArg tags outbound legs in their Stasis arguments: "ariflow-leg,CALL".
const LegArg = "ariflow-leg"

// pathSince is when the current event path began (zero: unknown).
func (t *Transfer) pathSince() time.Time {
	if t.env.PathSince == nil {
		return time.Time{}
	}
	return t.env.PathSince()
}

// ringGuard is how long past the ring timeout a transfer waits for the
// leg's end before taking it for lost: Asterisk's dial timeout ends the
// ringing, and this only guards against a lost event.
const ringGuard = 3 * time.Second

// Transfer is one run of a transfer block: its plan, the number of the
// list it is at, and that number's leg. Its methods run on the call's
// goroutine.
type Transfer struct {
	call    Call
	env     *Env
	gate    Gate
	plan    Plan
	log     *logrus.Entry
	attempt int    // index in plan.Targets of the current number
	res     Result // the current number's result
	leg     leg
	// rejoin: the last process may have bridged the leg already; only
	// who is missing is added.
	rejoin bool
	// adopted: run from a record another process (or term) left;
	// redialled: its leg, found never dialled, was dialled afresh.
	adopted, redialled bool
	// dialUnsure: the dial got no answer; it may not have left.
	dialUnsure bool
	// unsureChecked: Asterisk was asked whether that dial left.
	unsureChecked bool
	// held is the leg the last transfer made ahead, until this one's first
	// number takes it (or it goes); aheadTried: this one has made (or
	// passed over making) the next one's.
	held       *Ahead
	aheadTried bool
	// endedSlot is the slot of a leg that has ended, not given back yet
	// (slot.go).
	endedSlot EndedSlot
}

// leg is the current number's outbound channel and what became of it.
type leg struct {
	id, bridge string
	target     record.Target
	dialed     time.Time
	answered   time.Time
	deadline   time.Time     // ring timeout
	dialStatus string        // the last DIALSTATUS seen
	slot       string        // the concurrency slot to give back ("": none)
	counting   chan counted  // the policy's counters at work on it (admit)
	along      *policy.Along // the policy's count, to be made by the "dialing" write
	done       int           // characters of the digits sent (or paused)
	sent       map[string]bool
	over       bool          // hung up, its slot given back and its end announced
	ringSent   chan struct{} // closed once the ringback's request is through
	// callerIn: the bridge was kept from the last transfer, with the
	// caller in it (takeKeptBridge); joined: the caller is in this
	// leg's bridge for sure.
	callerIn, joined bool
	// ahead: made ahead by the last transfer (ahead.go), not by this one.
	ahead *Ahead
	// notDialled: this transfer made the leg (or took it undialled) and
	// has not sent its dial yet (notdialled.go).
	notDialled bool
	talk       talkState
	log        *logrus.Entry
}

// state is one state of the machine: what it waits for, until when, and
// where each event leads. A handler returns the next state (itself to
// stay, nil when the transfer is over).
type state interface {
	name() record.TransferState
	deadline(t *Transfer) time.Time
	onEvent(ctx context.Context, t *Transfer, ev ari.Event) (state, error)
	onDeadline(ctx context.Context, t *Transfer) (state, error)
}

func newTransfer(call Call, env *Env, gate Gate, plan Plan) *Transfer {
	if plan.Options.Tone <= 0 {
		plan.Options.Tone = dtmfTone
	}
	if plan.Options.Gap <= 0 {
		plan.Options.Gap = dtmfGap
	}
	return &Transfer{call: call, env: env, gate: gate, plan: plan,
		log: call.Log().WithField("step", call.Record().Block)}
}

// Run runs a transfer block's plan from the number at index from (0 but
// for records of older versions, which saved the list's place between two
// numbers) until one answers and the transfer ends, or none does.
func Run(ctx context.Context, call Call, env *Env, gate Gate, plan Plan, from int) (Result, error) {
	t := newTransfer(call, env, gate, plan)
	t.takeSlot()
	if ac, ok := call.(aheadCall); ok {
		t.held = ac.TakeAhead()
	}
	s, err := t.dialFrom(ctx, from)
	if t.held != nil {
		t.held.Drop(call, env, "its transfer did not make a leg")
		t.held = nil
	}
	if err == nil {
		err = t.run(ctx, s)
	}
	return t.finish(ctx, err)
}

// run feeds the call's events and the states' deadlines to the machine
// until it ends.
func (t *Transfer) run(ctx context.Context, s state) error {
	for s != nil {
		ev, err := t.call.Next(ctx, s.deadline(t))
		if s, err = t.step(ctx, s, ev, err); err != nil {
			return err
		}
	}
	return nil
}

// step is one transition: the state's deadline, the caller's hangup, the
// far end's, or another event of the call's (ev and nextErr as Next
// returned them).
func (t *Transfer) step(ctx context.Context, s state, ev ari.Event, nextErr error) (state, error) {
	switch {
	case errors.Is(nextErr, ErrDeadline):
		return s.onDeadline(ctx, t)
	case errors.Is(nextErr, ErrCallerGone):
		return nil, t.callerLeft(ctx, s)
	case nextErr != nil:
		return nil, nextErr
	}
	if end, ok := t.legEnded(s, ev); ok {
		return t.farEndHungUp(ctx, s, end)
	}
	return s.onEvent(ctx, t, ev)
}

// finish ends the run: the last leg's end announced and its slot given
// back (unless the process stops and leaves the call to another), and the
// block's result.
func (t *Transfer) finish(ctx context.Context, err error) (Result, error) {
	if !stopping(ctx, err) {
		t.stopWarning(ctx)
		t.closeLeg(ctx)
	} else {
		t.noteNotDialled()
	}
	t.keepSlot()
	t.res.Attempts = t.attempt + 1
	t.ended(err)
	return t.res, err
}

// stopping tells whether the call is being left to another process: the
// process lost its lease or stops. Nothing more is done for it here.
func stopping(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, record.ErrFenced)
}

// legEnd is how the leg ended: its cause, the far end's SIP response
// when Asterisk reports it, and its last state.
type legEnd struct {
	cause, sipCode int
	state          string
}

// legEnded tells whether ev ends the current leg, and how. Until the far
// end answered only ChannelDestroyed counts: it carries the cause that
// decides the outcome.
func (t *Transfer) legEnded(s state, ev ari.Event) (legEnd, bool) {
	if t.leg.id == "" {
		return legEnd{}, false
	}
	switch e := ev.(type) {
	case *ari.ChannelDestroyed:
		return legEnd{e.Cause, e.TechCause, e.Channel.State}, e.Channel.ID == t.leg.id
	case *ari.ChannelHangupRequest:
		return legEnd{cause: e.Cause}, e.Channel.ID == t.leg.id && answered(s)
	case *ari.StasisEnd:
		return legEnd{}, e.Channel.ID == t.leg.id && answered(s)
	}
	return legEnd{}, false
}

func answered(s state) bool {
	switch s.name() {
	case record.StateScreening, record.StateBridged:
		return true
	}
	return false
}

// farEndHungUp is the far end's hangup, in whatever state it comes.
func (t *Transfer) farEndHungUp(ctx context.Context, s state, end legEnd) (state, error) {
	t.forgetLeg()
	switch s.name() {
	case record.StateScreening:
		s.(*screening).done(t)
		return t.notConfirmed(ctx, "far-end-hangup-screening")
	case record.StateBridged:
		return nil, t.resumeAfterHangup(ctx, end.cause)
	}
	if end.state == "Up" {
		// Its end arrived with no answer before it, though its last state
		// was Up: the far end answered and hung up at once. A very short
		// call, not a failed one.
		t.answer()
		t.log.WithFields(logrus.Fields{"phase": "answered-and-gone", "ring_time": t.res.RingTime.Round(time.Millisecond)}).Info("transfer")
		t.ringbackOff(ctx, true)
		return nil, t.resumeAfterHangup(ctx, end.cause)
	}
	if end.cause == 0 && !t.leg.deadline.IsZero() && time.Now().After(t.leg.deadline) {
		// Its end went unseen (a takeover, a lost websocket) and it rang
		// past the dial timeout: Asterisk's timeout ended it.
		end.cause = CauseNoAnswer
	}
	t.res.Cause, t.res.RingTime, t.res.SIPCode = end.cause, time.Since(t.leg.dialed), end.sipCode
	t.res.Outcome = NotAnsweredOutcome(end.cause, t.leg.dialStatus)
	t.leg.log.WithFields(logrus.Fields{"phase": "not-answered", "outcome": t.res.Outcome, "cause": end.cause, "cause_text": CauseText(end.cause),
		"sip_code": t.res.SIPCode, "dialstatus": t.leg.dialStatus}).Info("transfer")
	t.ringbackOff(ctx, false)
	t.hangupLeg(ctx)
	return t.next(ctx)
}

// callerLeft is the caller's hangup, in whatever state it comes: the far
// end is hung up at once.
func (t *Transfer) callerLeft(ctx context.Context, s state) error {
	if answered(s) && s.name() == record.StateBridged {
		t.res.TalkTime, t.res.Digits, t.res.EndedBy = t.talkTime(), t.sent(), flows.EndedByCaller
	} else {
		t.res.Outcome, t.res.RingTime, t.res.SIPCode = OutcomeCallFailed, time.Since(t.leg.dialed), 0
	}
	t.leg.log.WithField("phase", "caller-hangup-"+string(s.name())).Info("transfer")
	t.hangupLeg(ctx)
	return ErrCallerGone
}

// resumeAfterHangup ends an answered transfer after the far end hung up: back to
// the flow (resume) or, without resume, the caller is hung up too.
func (t *Transfer) resumeAfterHangup(ctx context.Context, cause int) error {
	t.res.Cause = cause
	if t.res.EndedBy == "" {
		t.res.EndedBy = flows.EndedByFarEnd
	}
	if t.res.TalkTime == 0 {
		t.res.TalkTime, t.res.Digits = t.talkTime(), t.sent()
	}
	t.leg.log.WithFields(logrus.Fields{"phase": "far-end-hangup", "cause": cause, "talk_time": t.res.TalkTime.Round(time.Millisecond)}).Info("transfer")
	return t.end(ctx)
}

// end ends an answered transfer: the leg and bridge go, and the caller
// resumes (Success) or, without resume, is hung up as well.
func (t *Transfer) end(ctx context.Context) error {
	if !t.plan.Resume {
		// Resume off: the caller went with the far end; it ends with it.
		t.hangupLeg(ctx)
		_ = t.env.ARI.Hangup(context.WithoutCancel(ctx), t.call.ID(), "normal")
		return ErrHandedOff
	}
	// No save here: a process that adopts this call with its leg gone
	// resumes it just the same. The caller resumes while the leg goes.
	// The bridge, the caller in it, is kept for the next transfer when
	// the call can keep it; else it goes too, and destroying it hands the
	// caller back to us in Stasis before the next request that touches
	// the caller (Settle).
	kept := t.leg.joined && t.keepBridge()
	t.hangupLegLater(kept)
	t.leg.log.WithFields(logrus.Fields{"phase": "resumed", "bridge_kept": kept}).Info("transfer")
	return nil
}

// hangupLegLater is hangupLeg off the caller's path (Call.Later), the
// bridge left alone when it is kept. Both requests are safe to repeat and
// are tried again a few times; what still fails is logged, and reconcile
// finds it.
func (t *Transfer) hangupLegLater(keepBridge bool) {
	rec := t.call.Record()
	legID, bridge, log, a := rec.Outbound, rec.Bridge, t.log, t.env.ARI
	if keepBridge {
		bridge = ""
	}
	t.call.Disown(legID)
	rec.Outbound = ""
	if bridge != "" {
		t.call.Disown(bridge)
		rec.Bridge = ""
	}
	if legID == "" && bridge == "" {
		return
	}
	t.call.Later(func(ctx context.Context) {
		if err := goneThrice(func() error { return hangupAndDestroy(ctx, a, legID, bridge) }); err != nil {
			log.WithError(err).Warn("transfer: the leg or bridge did not go; reconcile will find it")
		}
	})
}

// goneThrice runs remove (requests safe to repeat) up to three times,
// 100 and 200 ms apart, and returns its last error.
func goneThrice(remove func() error) error {
	for try := 0; ; try++ {
		err := remove()
		if err == nil || try == 2 {
			return err
		}
		time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
	}
}

// hangupAndDestroy hangs up the leg (if any) and destroys the bridge (if
// any); gone already counts as done.
func hangupAndDestroy(ctx context.Context, a ARI, legID, bridge string) error {
	if legID != "" {
		if err := a.Hangup(ctx, legID, "normal"); err != nil && !ari.IsNotFound(err) {
			return err
		}
	}
	if bridge != "" {
		if err := a.DestroyBridge(ctx, bridge); err != nil && !ari.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// next goes on with the list after a number that did not answer, or ends
// the block.
func (t *Transfer) next(ctx context.Context) (state, error) {
	if !tryNext(t.res.Outcome) || t.attempt+1 >= len(t.plan.Targets) {
		return nil, t.saveEnded(ctx)
	}
	t.log.WithFields(logrus.Fields{"number": t.leg.target.Number, "outcome": t.res.Outcome,
		"next": t.plan.Targets[t.attempt+1].Number, "attempt": t.attempt + 1}).Info("transfer: trying the next number")
	t.closeLeg(ctx)
	return t.dialFrom(ctx, t.attempt+1)
}

// saveEnded writes the result of a block that ended unanswered before the
// flow acts on its branch: its cause goes with the leg, and a process
// taking over meanwhile would have to guess it. A write that fails for
// another reason than fencing is logged; the call goes on.
func (t *Transfer) saveEnded(ctx context.Context) error {
	ts := t.call.Record().Transfer
	if ts == nil {
		return nil
	}
	ts.State, ts.Outcome, ts.Cause, ts.SIPCode = record.StateEnded, string(t.res.Outcome), t.res.Cause, t.res.SIPCode
	err := t.call.Save(ctx)
	if err != nil && !stopping(ctx, err) {
		t.log.WithError(err).Warn("transfer: saving the unanswered result failed; going on")
		return nil
	}
	return err
}

// forgetLeg forgets a leg that is hanging up by itself, so that hangupLeg
// does not ask Asterisk to hang it up again.
func (t *Transfer) forgetLeg() {
	rec := t.call.Record()
	t.call.Disown(rec.Outbound)
	rec.Outbound = ""
}

// hangupLeg hangs up the leg and destroys the bridge, and forgets both
// once Asterisk has; a failure leaves them in the record, for the call's
// end to try again.
func (t *Transfer) hangupLeg(ctx context.Context) {
	bg := context.WithoutCancel(ctx)
	rec := t.call.Record()
	if rec.Outbound != "" {
		if err := t.env.ARI.Hangup(bg, rec.Outbound, "normal"); err != nil {
			t.log.WithError(err).Warn("outbound hangup failed")
			return
		}
	}
	if rec.Bridge != "" {
		if err := t.env.ARI.DestroyBridge(bg, rec.Bridge); err != nil {
			t.log.WithError(err).Warn("bridge destroy failed")
			return
		}
	}
	t.call.Disown(rec.Outbound, rec.Bridge)
	rec.Outbound, rec.Bridge = "", ""
}

// closeLeg closes the current leg's books once it has ended: its
// completed event sent and its concurrency slot given back.
func (t *Transfer) closeLeg(ctx context.Context) {
	if t.leg.over || t.leg.id == "" {
		return
	}
	t.leg.over = true
	t.numberDone()
	t.legEvent(LegCompleted)
	t.releaseSlot()
}
