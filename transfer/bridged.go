package transfer

import (
	"context"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// bridged is the talk: caller and far end bridged until one of them hangs
// up. The digits go out after the configured delay, the return key is
// watched for and the time limit kept; one timer serves every deadline.
type bridged struct{}

func (bridged) name() record.TransferState { return record.StateBridged }

func (bridged) deadline(t *Transfer) time.Time { return t.nextWake() }

func (b bridged) onDeadline(ctx context.Context, t *Transfer) (state, error) {
	if by := t.due(ctx); by != "" {
		return nil, t.endByUs(ctx, by)
	}
	return b, nil
}

func (b bridged) onEvent(ctx context.Context, t *Transfer, ev ari.Event) (state, error) {
	if e, ok := ev.(*ari.ChannelDtmfReceived); ok && e.Channel.ID == t.call.ID() {
		if t.callerKey(ctx, e.Digit, e.DurationMs) {
			return nil, t.endByUs(ctx, flows.EndedByCallerKey)
		}
	}
	return b, nil
}

// returnKeyHold is how long a key that begins the return key (the first
// '*' of "**") is held back before it is passed on to the far end after
// all.
const returnKeyHold = 2 * time.Second

// bridgeRetries bound how often an addChannel refused with 422 is tried
// again, waiting 20, 40, 80 and 160 ms. After them the request goes on
// being tried, bridgeRetryWait apart, for as long as the leg and the
// caller are still there (a 422 also answers for a caller gone) and up to
// bridgeRetryFor since the first: on a saturated PBX the move out of the
// holding bridge can take longer than the quick tries, and an answered
// far end is worth the wait more than the Error branch.
const (
	bridgeRetries   = 4
	bridgeRetryWait = 200 * time.Millisecond
	bridgeRetryFor  = 3 * time.Second
)

// talkState is what a bridged transfer keeps beside its digits: the
// deadlines of the time limit and its warning, and a prefix of the return
// key held back from the far end.
type talkState struct {
	digitAt time.Time // when the next DTMF character is due
	limitAt time.Time // max_talk
	warnAt  time.Time
	warned  bool
	warnID  string
	held    string    // keys that may begin the return key, not yet passed on
	heldAt  time.Time // when they are looked at again (passed on, or dropped)
	heldEnd time.Time // when the hold ends: the next key would have come by then
	heldGot time.Time // when the first of them arrived
	// heldSilent: the hold ended before the event path was heard from
	// again (a ping was asked for).
	heldSilent bool
}

// bridge bridges the answered far end with the caller. The record says
// bridged first: a process taking over from here does not screen the far
// end again, and carries the digits on from the one reached.
func (t *Transfer) bridge(ctx context.Context) (state, error) {
	rec := t.call.Record()
	rec.Transfer.State = record.StateBridged
	if err := t.call.SetPhase(ctx, record.PhaseBridged); err != nil {
		if stopping(ctx, err) {
			return nil, err
		}
		// A process taking over finds the leg up and bridges it just the
		// same; the call goes on.
		t.leg.log.WithError(err).Warn("saving the bridged phase failed")
	}
	t.leg.log.WithFields(logrus.Fields{"phase": "answered", "ring_time": t.res.RingTime.Round(time.Millisecond)}).Info("transfer")
	t.entered(record.StateBridged)
	if !rec.Unanswered { // else the answer ends the ringing
		go t.stopRingback(ctx, t.leg.ringSent, true)
	}
	if err := t.joinRetrying(ctx); err != nil {
		if stopping(ctx, err) {
			return nil, err
		}
		if !t.callerPresent(ctx) {
			// The caller hung up as the far end answered.
			t.leg.log.WithField("phase", "caller-hangup-answered").Info("transfer")
			t.hangupLeg(ctx)
			return nil, ErrCallerGone
		}
		// Answered and hung up at once is a very short call, not an error.
		if t.legMissing(ctx) {
			t.forgetLeg()
			return nil, t.resumeAfterHangup(ctx, 0)
		}
		t.leg.log.WithError(err).WithField("phase", "bridge-failed").Warn("transfer")
		t.res.Outcome = OutcomeError
		t.hangupLeg(ctx)
		return nil, nil
	}
	return t.talk(), nil
}

// joinRetrying adds caller and leg to the bridge. A leg dialled through
// ARI waits in an internal holding bridge while it rings, and in the
// instant after its answer Asterisk may refuse to move it (422, "Channel
// not in Stasis application"). The leg is still there, so the request
// goes again.
func (t *Transfer) joinRetrying(ctx context.Context) error {
	if t.plan.Options.Ringback == flows.RingbackEarlyMedia && !t.rejoin {
		return nil // bridged before it was dialled
	}
	wait, started := 20*time.Millisecond, time.Now()
	for try := 0; ; try++ {
		err := t.joinBridge(ctx)
		if unanswered(ctx, err) {
			return t.joinUnanswered(ctx, err)
		}
		if err == nil || ari.StatusCode(err) != 422 {
			return err
		}
		if try >= bridgeRetries && (time.Since(started) >= bridgeRetryFor || t.legGone(ctx) || !t.callerPresent(ctx)) {
			return err
		}
		t.leg.log.WithError(err).WithFields(logrus.Fields{"phase": "bridge-retry", "try": try + 1}).Debug("transfer")
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, bridgeRetryWait)
	}
}

// legGone tells whether the leg has ended or cannot be looked at: the
// long retries of joinRetrying are for a leg still there.
func (t *Transfer) legGone(ctx context.Context) bool {
	exists, err := t.env.ARI.ChannelExists(ctx, t.leg.id)
	return err != nil || !exists
}

// joinSettle is how long after an addChannel without an answer the
// bridge is looked at: the request may still be carried out meanwhile.
const joinSettle = time.Second

// joinUnanswered handles an addChannel that got no answer (the connection
// cut): it may have been carried out. Sending it again blindly would take
// a channel already in the bridge out and in again, and two at once can
// lose the caller's absorbDTMF; so once the request has had time to land,
// only who is missing from the bridge is added.
func (t *Transfer) joinUnanswered(ctx context.Context, err error) error {
	t.leg.log.WithError(err).WithField("phase", "bridge-unanswered").Warn("transfer: adding to the bridge got no answer; adding whoever is missing in a moment")
	select {
	case <-time.After(joinSettle):
	case <-ctx.Done():
		return ctx.Err()
	}
	return t.retry(ctx, "adding whoever is missing to the bridge", func() error { return t.join(ctx, true) })
}

// joinBridge adds caller and leg to the bridge. Both join without a
// connected-line update, so that the identity the block presents holds
// for the whole call whatever the trunk's send_connected_line: the far
// end is never shown the caller, nor the caller the far end (Asterisk
// exchanges identities on the join that completes the bridge, and which
// join that is is not ours to fix: both carry the flag). With a return
// key the caller's keys are absorbed by the bridge (ARI's absorbDTMF), so
// that the far end never hears the return key; ariflow passes the other
// keys on itself. A process taking over adds only who is missing, with the
// same settings: adding a channel again would add it without them.
func (t *Transfer) joinBridge(ctx context.Context) error { return t.join(ctx, t.rejoin) }

// join is joinBridge; onlyMissing looks at the bridge first and adds only
// who is not in it.
func (t *Transfer) join(ctx context.Context, onlyMissing bool) error {
	t.call.Settle() // the caller out of the last transfer's bridge first
	a := t.env.ARI
	caller, legID, bridge := t.call.ID(), t.leg.id, t.leg.bridge
	// A kept bridge has the caller in it already.
	wantCaller, wantLeg := onlyMissing || !t.leg.callerIn, true
	if onlyMissing {
		in, err := a.BridgeChannels(ctx, bridge)
		switch {
		case ari.IsNotFound(err):
			if err := t.createBridge(ctx); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		for _, id := range in {
			wantCaller = wantCaller && id != caller
			wantLeg = wantLeg && id != legID
		}
	}
	if err := t.answerCaller(ctx); err != nil {
		return err
	}
	err := t.joinWhoIsMissing(ctx, bridge, caller, legID, wantCaller, wantLeg)
	if err == nil {
		t.leg.joined = true
	}
	return err
}

// answerCaller answers a caller left unanswered while its far end rang
// (answer on bridge), once the ring request is through: a ring that
// overtook the answer would be the ringing tone over the call. The record
// says so with its next save.
func (t *Transfer) answerCaller(ctx context.Context) error {
	rec := t.call.Record()
	if !rec.Unanswered {
		return nil
	}
	if t.leg.ringSent != nil {
		<-t.leg.ringSent
	}
	if err := t.env.ARI.Answer(ctx, t.call.ID()); err != nil {
		return err
	}
	rec.Unanswered = false
	t.leg.log.WithField("phase", "caller-answered").Debug("transfer: the caller answered on the bridge")
	return nil
}

// joinWhoIsMissing adds the caller and the leg, as wanted, with the
// block's settings (joinBridge).
func (t *Transfer) joinWhoIsMissing(ctx context.Context, bridge, caller, legID string, wantCaller, wantLeg bool) error {
	a := t.env.ARI
	join := ari.BridgeJoin{InhibitConnectedLine: true}
	if t.plan.Options.ReturnKey == "" {
		var ids []string
		if wantCaller {
			ids = append(ids, caller)
		}
		if wantLeg {
			ids = append(ids, legID)
		}
		if len(ids) == 0 {
			return nil
		}
		return a.AddToBridgeWith(ctx, bridge, join, ids...)
	}
	if wantCaller {
		if err := a.AddToBridgeWith(ctx, bridge, ari.BridgeJoin{AbsorbDTMF: true, InhibitConnectedLine: true}, caller); err != nil {
			return err
		}
	}
	if wantLeg {
		return a.AddToBridgeWith(ctx, bridge, join, legID)
	}
	return nil
}

// talk sets the deadlines once bridged (or taken over bridged).
func (t *Transfer) talk() state {
	ts := &t.leg.talk
	now := time.Now()
	if t.leg.done < len(t.plan.Digits) {
		delay := t.env.DTMFDelay
		if t.leg.done > 0 {
			delay = 0 // taken over mid-way: the far end is listening already
		}
		ts.digitAt = now.Add(delay)
	} else {
		ts.digitAt = now // the next transfer's leg is made from then (ahead.go)
	}
	o := t.plan.Options
	if o.MaxTalk > 0 {
		from := t.leg.answered
		if from.IsZero() {
			from = now
		}
		ts.limitAt = from.Add(o.MaxTalk)
		if o.Warning != "" {
			ts.warnAt = ts.limitAt.Add(-o.WarnBefore)
			if rt := t.call.Record().Transfer; rt != nil && rt.Options != nil && rt.Options.WarningPlayed {
				ts.warned = true
			}
		}
	}
	return bridged{}
}

// nextWake is the earliest deadline pending (zero: none).
func (t *Transfer) nextWake() time.Time {
	ts := &t.leg.talk
	var at time.Time
	take := func(d time.Time) {
		if !d.IsZero() && (at.IsZero() || d.Before(at)) {
			at = d
		}
	}
	if t.leg.done < len(t.plan.Digits) || !t.aheadTried {
		take(ts.digitAt)
	}
	if !ts.warned {
		take(ts.warnAt)
	}
	take(ts.limitAt)
	if ts.held != "" {
		take(ts.heldAt)
	}
	return at
}

// due does what is due now; it returns flows.EndedByTimeLimit when the
// time limit is reached.
func (t *Transfer) due(ctx context.Context) string {
	ts := &t.leg.talk
	now := time.Now()
	if !ts.limitAt.IsZero() && !now.Before(ts.limitAt) {
		return flows.EndedByTimeLimit
	}
	if t.leg.done < len(t.plan.Digits) && !now.Before(ts.digitAt) {
		t.sendNextDigit(ctx)
	} else if !t.aheadTried && t.leg.done >= len(t.plan.Digits) && !now.Before(ts.digitAt) {
		// Once the digits are out: it does not compete with them.
		t.makeAhead(ctx)
	}
	if !ts.warned && !ts.warnAt.IsZero() && !now.Before(ts.warnAt) {
		t.playWarning(ctx)
	}
	if ts.held != "" && !now.Before(ts.heldAt) {
		switch {
		case t.heldAcrossGap():
			t.leg.log.WithFields(logrus.Fields{"phase": "return-key-dropped", "keys": len(ts.held)}).Info("transfer: keys that may begin the return key, held across a change of the event path, not passed on")
			ts.held = ""
		case !t.pathHeardSince(ts.heldEnd):
			// Nothing came by the event path since the hold ended: it
			// may be stalled with the rest of the return key in it, and a
			// key passed on now would reach the far end once the stall
			// ends. Held until the path shows life (passed on then) or
			// begins anew (dropped).
			if !ts.heldSilent {
				// A live path answers a ping within a round trip.
				ts.heldSilent = true
				t.pingPath()
				t.leg.log.WithFields(logrus.Fields{"phase": "return-key-wait", "keys": len(ts.held)}).Debug("transfer: keys that may begin the return key held on until the event path is heard from")
			}
			ts.heldAt = now.Add(pathRecheck)
		default:
			t.forward(ctx, ts.held, 0)
			ts.held = ""
		}
	}
	return ""
}

// pathRecheck is how often a silent event path is looked at again while
// keys are held for it: a live one answers the ping sooner.
const pathRecheck = 20 * time.Millisecond

// pingPath has the event path pinged now (PathPing), when it can be.
func (t *Transfer) pingPath() {
	if t.env.PathPing != nil {
		t.env.PathPing()
	}
}

// pathHeardSince tells whether the event path received anything after at.
// Asterisk writes a websocket's frames in order, and the path is pinged
// (PathPing) when a hold ends, so a path heard after at has delivered
// every event published before at; one silent since may hold them.
func (t *Transfer) pathHeardSince(at time.Time) bool {
	if t.env.PathHeard == nil {
		return true
	}
	return t.env.PathHeard().After(at)
}

// sendNextDigit sends (or pauses for) the next character when it is due,
// records the progress so that a process taking over continues from the
// next one, and schedules the one after.
//
// Cadence: each digit is one request (a string handed to Asterisk whole is
// played out by the leg's own thread, which a takeover could not stop or
// continue exactly). Asterisk plays a request 100 ms after taking it, for
// the tone's duration, then waits `between` (1 ms here, its minimum): the
// requests are sent tone+gap apart, and so leave the tones tone+gap apart
// on the wire. A pause adds its length.
func (t *Transfer) sendNextDigit(ctx context.Context) {
	ts := &t.leg.talk
	o := t.plan.Options
	ch := t.plan.Digits[t.leg.done]
	// The next character is due tone+gap (or the pause) after this one
	// reached Asterisk: after its time, or later if it left late (a busy
	// machine), so that no gap on the wire is ever shorter than the
	// block's.
	at := ts.digitAt
	if now := time.Now(); now.After(at) {
		at = now
	}
	if pause := flows.DTMFPause(ch); pause > 0 {
		ts.digitAt = at.Add(time.Duration(pause) * time.Millisecond)
		t.leg.done++
	} else {
		// Progress is written before the digit leaves, and a digit whose
		// progress could not be written is not sent (it is tried again a
		// moment later): a process taking over never sends a digit twice.
		// Only a process killed between the write and the request skips
		// one.
		rt := t.call.Record().Transfer
		rt.DigitsDone = t.leg.done + 1
		written := time.Now()
		if err := t.call.Save(ctx); err != nil {
			rt.DigitsDone = t.leg.done
			t.leg.log.WithError(err).Warn("saving DTMF progress failed; digit held back")
			ts.digitAt = time.Now().Add(200 * time.Millisecond)
			return
		}
		// Written as sent: it leaves even if the call is being left this
		// instant, or the far end would never get it.
		if err := t.env.ARI.SendDTMF(ari.Written(ctx, written.Add(t.env.Written)), t.leg.id, string(ch), time.Millisecond, o.Tone); err != nil {
			t.leg.log.WithError(err).WithField("phase", "dtmf-failed").Warn("transfer")
			if !unanswered(ctx, err) {
				// Refused: the leg is probably hanging up; its events
				// will say so.
				t.leg.done = len(t.plan.Digits)
				return
			}
			// No answer (the connection cut): the digit may have been
			// played; it counts as sent, and the next ones go on.
		}
		// The next is due tone+gap after Asterisk took this one: at the
		// latest when the request came back.
		if returned := time.Now(); returned.After(at) {
			at = returned
		}
		ts.digitAt = at.Add(o.Tone + o.Gap)
		t.leg.done++
	}
	if t.leg.done >= len(t.plan.Digits) {
		t.leg.log.WithFields(logrus.Fields{"phase": "dtmf", "digits": len(t.sent())}).Info("transfer")
	}
}

// sent is the digits sent so far, pauses left out.
func (t *Transfer) sent() string {
	return strings.Map(func(r rune) rune {
		if flows.DTMFPause(byte(r)) > 0 {
			return -1
		}
		return r
	}, t.plan.Digits[:t.leg.done])
}

func (t *Transfer) talkTime() time.Duration {
	if t.leg.answered.IsZero() {
		return 0
	}
	return time.Since(t.leg.answered)
}

// playWarning plays the warning to the caller alone: a playback on the
// caller's channel while it is in the bridge is heard by that channel
// only (a playback on the bridge would reach the far end too).
func (t *Transfer) playWarning(ctx context.Context) {
	ts := &t.leg.talk
	ts.warned = true
	ts.warnID = t.env.NewID("warn")
	t.call.Own(ts.warnID)
	if err := t.env.ARI.Play(ctx, t.call.ID(), ts.warnID, t.plan.Options.Warning); err != nil {
		t.leg.log.WithError(err).WithField("phase", "warning-failed").Warn("transfer")
		t.call.Disown(ts.warnID)
		ts.warnID = ""
		return
	}
	t.leg.log.WithFields(logrus.Fields{"phase": "warning", "left": time.Until(ts.limitAt).Round(time.Millisecond)}).Info("transfer")
	if rt := t.call.Record().Transfer; rt != nil && rt.Options != nil {
		rt.Options.WarningPlayed = true
		if err := t.call.Save(ctx); err != nil {
			t.leg.log.WithError(err).Warn("saving the warning's progress failed")
		}
	}
}

// stopWarning stops a warning still playing when the transfer ends, so
// that the caller's next prompt is not queued behind it.
func (t *Transfer) stopWarning(ctx context.Context) {
	ts := &t.leg.talk
	if ts.warnID == "" {
		return
	}
	_ = t.env.ARI.StopPlayback(context.WithoutCancel(ctx), ts.warnID)
	t.call.Disown(ts.warnID)
	ts.warnID = ""
}

// callerKey handles a key the caller pressed while bridged, when the
// block has a return key (the bridge absorbs the caller's keys then): it
// tells whether the return key is complete, and passes on to the far end
// every key that cannot be part of it. A key that may begin the return
// key is held until the next key, or returnKeyHold, shows it does not.
func (t *Transfer) callerKey(ctx context.Context, digit string, durMs int) bool {
	ts := &t.leg.talk
	key := t.plan.Options.ReturnKey
	if key == "" || digit == "" {
		return false
	}
	fwd, held, matched := matchReturnKey(key, ts.held, digit)
	if fwd != "" {
		t.forward(ctx, fwd, durMs)
	}
	if held != "" && held != ts.held {
		if ts.held == "" || !strings.HasPrefix(held, ts.held) {
			ts.heldGot = time.Now()
		}
		ts.heldAt = time.Now().Add(returnKeyHold)
		ts.heldEnd, ts.heldSilent = ts.heldAt, false
	}
	ts.held = held
	return matched
}

// heldAcrossGap tells whether the keys held back may be the rest of a
// return key whose first keys were lost: they arrived within a hold of
// the event path's beginning (the first keys may have gone to the last
// websocket, or the last process), or the path began anew while they were
// held. Passing them on would let the far end hear the return key; the
// caller presses it again.
func (t *Transfer) heldAcrossGap() bool {
	since := t.pathSince()
	return !since.IsZero() && t.leg.talk.heldGot.Sub(since) < returnKeyHold
}

// matchReturnKey adds a key to those held back: it returns the keys to pass
// on to the far end (those that can no longer begin the return key), the
// keys still held (a beginning of the return key), and whether the return
// key is complete.
func matchReturnKey(key, held, digit string) (forward, stillHeld string, matched bool) {
	cand := held + digit
	i := 0
	for i < len(cand) && !strings.HasPrefix(key, cand[i:]) {
		i++
	}
	if cand[i:] == key {
		return cand[:i], "", true
	}
	return cand[:i], cand[i:], false
}

// forward passes caller keys on to the far end, as long as the caller
// pressed them (within the DTMF tone bounds).
func (t *Transfer) forward(ctx context.Context, keys string, durMs int) {
	o := t.plan.Options
	tone := time.Duration(durMs) * time.Millisecond
	tone = min(max(tone, flows.MinDTMFTone*time.Millisecond), flows.MaxDTMFTone*time.Millisecond)
	if durMs == 0 {
		tone = o.Tone
	}
	if err := t.env.ARI.SendDTMF(ctx, t.leg.id, keys, o.Gap, tone); err != nil {
		t.leg.log.WithError(err).WithField("phase", "forward-failed").Warn("transfer")
		return
	}
	// The count only: a caller's keys may be a PIN.
	t.leg.log.WithFields(logrus.Fields{"phase": "forwarded", "keys": len(keys)}).Debug("transfer: caller's keys passed on to the far end")
}

// endByUs ends an answered transfer that ariflow ends: the caller's
// return key or the time limit. The far end is hung up; the caller
// resumes at Success (resume on) or is hung up too (resume off).
func (t *Transfer) endByUs(ctx context.Context, by string) error {
	t.res.TalkTime, t.res.Digits, t.res.EndedBy = t.talkTime(), t.sent(), by
	t.res.Cause = CauseNormalClearing
	t.leg.log.WithFields(logrus.Fields{"phase": by, "talk_time": t.res.TalkTime.Round(time.Millisecond)}).Info("transfer")
	return t.end(ctx)
}
