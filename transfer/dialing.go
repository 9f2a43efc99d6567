package transfer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// dialing waits for the far end to answer: the leg is made and dialled,
// and ringing once it said so.
type dialing struct{ ringing bool }

func (d *dialing) name() record.TransferState {
	if d.ringing {
		return record.StateRinging
	}
	return record.StateDialing
}

func (d *dialing) deadline(t *Transfer) time.Time {
	if t.dialUnsure && !t.unsureChecked {
		return t.leg.dialed.Add(unsureCheck)
	}
	return t.leg.deadline.Add(ringGuard)
}

// unsureCheck is how long after a dial that got no answer Asterisk is
// asked whether it left. Not at once: a request whose answer was cut may
// still be carried out, and the websocket cut with it is back by then (a
// leg made while the app has no connection is hung up by Asterisk).
const unsureCheck = 2 * time.Second

// onDeadline: the ring timeout passed long ago and no end came. Asterisk's
// dial timeout ends the ringing; this only guards against a lost event.
func (d *dialing) onDeadline(ctx context.Context, t *Transfer) (state, error) {
	if t.dialUnsure && !t.unsureChecked {
		// The dial got no answer a moment ago: a leg that Asterisk
		// proves undialled is dialled again now, on a new leg.
		t.unsureChecked = true
		if !d.ringing && t.leg.dialStatus == "" && t.undialled(ctx) && t.dropUndialled(ctx) {
			return t.startLeg(ctx)
		}
		return d, nil
	}
	if t.neverDialled(ctx, d) {
		// The record said "dialing", yet the dial never left: the last
		// process stopped (or lost its lease, or the write's answer)
		// between the two. Nothing reached the far end: the number is
		// dialled now, on a new leg, the old one gone first.
		if t.dropUndialled(ctx) {
			return t.startLeg(ctx)
		}
	}
	t.leg.log.WithField("phase", "timeout-guard").Warn("transfer")
	t.count(t.env.Metrics.Stuck, "ringing")
	t.res.Outcome, t.res.RingTime = OutcomeTimeout, time.Since(t.leg.dialed)
	t.ringbackOff(ctx, false)
	t.hangupLeg(ctx)
	return t.next(ctx)
}

// dropUndialled hangs up a leg made but never dialled, so that the number
// is dialled again on a new one; false when it could not be hung up.
func (t *Transfer) dropUndialled(ctx context.Context) bool {
	t.leg.log.WithField("phase", "never-dialled").Warn("transfer: the adopted leg was never dialled; dialling the number now")
	t.count(t.env.Metrics.Stuck, "never-dialled")
	t.redialled = true
	t.hangupLeg(ctx)
	return t.call.Record().Outbound == ""
}

// undialledMarker is the SIP header every PJSIP leg is made with and
// without at once: PJSIP_HEADER(add) makes the leg's header store,
// PJSIP_HEADER(remove) empties it, and Asterisk deletes the store when the
// first INVITE leaves. So the store exists exactly while the leg has not
// been dialled, even when the far end never answers the INVITE, and the
// header never reaches the far end. Asterisk applies a create's variables
// in the order of the request, and encoding/json writes a map's keys
// sorted: "add" before "remove".
const undialledMarker = flows.ReservedHeader

// undialled tells whether Asterisk proves the leg was never dialled: its
// header store is still there (PJSIP_HEADERS() reads; once the INVITE
// left, Asterisk answers 500). Any other answer proves nothing: a leg
// made without the marker (an older version, a dial template that is not
// PJSIP), one hanging up, a request without an answer.
func (t *Transfer) undialled(ctx context.Context) bool {
	if t.leg.id == "" || !isPJSIP(t.leg.target.Dial) {
		return false
	}
	_, err := t.env.ARI.Variable(ctx, t.leg.id, "PJSIP_HEADERS()")
	return err == nil
}

// isPJSIP tells whether a dial string names a PJSIP endpoint: only those
// carry the marker. A record of an older version has no dial string; its
// legs were made by the same template, PJSIP by default.
func isPJSIP(dial string) bool {
	return dial == "" || len(dial) > 6 && strings.EqualFold(dial[:6], "PJSIP/")
}

// neverDialled tells whether an adopted leg (or one whose dial got no
// answer) is one its process made but never dialled: Asterisk's dial
// timeout ends a dialled leg at the ring deadline, so one still down well
// past it, with no sign of a dial, was never dialled. Only once per transfer, and never for a leg this process
// dialled itself.
func (t *Transfer) neverDialled(ctx context.Context, d *dialing) bool {
	if !(t.adopted || t.dialUnsure) || t.redialled || d.ringing || t.leg.dialStatus != "" || t.leg.id == "" {
		return false
	}
	st, err := t.env.ARI.ChannelState(ctx, t.leg.id)
	return err == nil && st == "Down"
}

func (d *dialing) onEvent(ctx context.Context, t *Transfer, ev ari.Event) (state, error) {
	switch e := ev.(type) {
	case *ari.StasisStart:
		// A made leg enters the app when made; one older versions
		// originated enters it once answered, and a check after a
		// takeover reports one found up so.
		if e.Channel.ID == t.leg.id && e.Channel.State == "Up" {
			return t.answered(ctx)
		}
	case *ari.ChannelStateChange:
		if e.Channel.ID != t.leg.id {
			break
		}
		switch e.Channel.State {
		case "Ringing":
			d.ring(t)
		case "Up":
			return t.answered(ctx)
		}
	case *ari.Dial:
		if e.Peer.ID == t.leg.id && e.Dialstatus != "" {
			t.leg.dialStatus = e.Dialstatus
			if e.Dialstatus == "RINGING" {
				d.ring(t)
			}
		}
	}
	return d, nil
}

func (d *dialing) ring(t *Transfer) {
	d.ringing = true
	t.entered(record.StateRinging)
	t.legEvent(LegRinging)
}

// dialFrom tries the plan's numbers from index i: each is admitted by the
// dial policy, then made and dialled. A number the policy refuses is
// passed over while the list has more.
func (t *Transfer) dialFrom(ctx context.Context, i int) (state, error) {
	for ; i < len(t.plan.Targets); i++ {
		t.attempt = i
		tg := t.plan.Targets[i]
		t.leg = leg{target: tg, log: t.log.WithField("number", tg.Number)}
		t.res = Result{Number: tg.Number}
		if err := t.admit(ctx); err != nil {
			if stopping(ctx, err) {
				return nil, err
			}
			t.numberDone()
			t.nextNumber(i)
			continue
		}
		s, err := t.startLeg(ctx)
		if errors.Is(err, errRefused) {
			t.numberDone()
			t.nextNumber(i)
			continue
		}
		return s, err
	}
	return nil, nil
}

// nextNumber says that the list goes on after the i-th number.
func (t *Transfer) nextNumber(i int) {
	if i+1 < len(t.plan.Targets) {
		t.log.WithFields(logrus.Fields{"number": t.plan.Targets[i].Number, "outcome": t.res.Outcome,
			"next": t.plan.Targets[i+1].Number, "attempt": i + 1}).Info("transfer: trying the next number")
	}
}

// startLeg makes the current number's leg and dials it. The record names
// the leg, and says it is dialled, before the dial leaves: a process
// taking over never dials it twice. It is written once the leg is made,
// not before: a leg made but not named in the record is not dialled, and
// a process taking over runs the block again and hangs the leg up.
func (t *Transfer) startLeg(ctx context.Context) (state, error) {
	rec := t.call.Record()
	l := &t.leg
	l.dialed = time.Now()
	l.deadline = l.dialed.Add(time.Duration(l.target.TimeoutS) * time.Second)
	if l.ahead = t.useAhead(); l.ahead != nil {
		l.id = l.ahead.ID
	} else {
		l.id = t.env.NewID("leg")
	}
	if l.bridge, l.callerIn = t.takeKeptBridge(); !l.callerIn {
		l.bridge = t.env.NewID("br")
	}
	l.log = l.log.WithField("outbound", l.id)
	l.notDialled = true
	rec.Outbound, rec.Bridge = l.id, l.bridge
	rec.Transfer = t.persisted(record.StateCreated)
	t.call.Own(l.id, l.bridge)
	l.log.WithFields(logrus.Fields{"phase": "dialing", "timeout": l.deadline.Sub(l.dialed), "made_ahead": l.ahead != nil}).Info("transfer")
	t.entered(record.StateDialing)
	err := t.makeLeg(ctx)
	if err == nil {
		return &dialing{}, nil
	}
	if cerr := t.awaitCount(ctx); errors.Is(err, errRefused) || cerr != nil {
		// Refused by the policy's counters while the leg was made: it is
		// hung up undialled.
		t.hangupLeg(ctx)
		return nil, errRefused
	}
	if stopping(ctx, err) {
		return nil, err
	}
	t.hangupLeg(ctx)
	if ari.StatusCode(err) == 400 && !t.callerPresent(ctx) {
		// ARI refuses a leg whose originator is gone: the caller hung up
		// while we dialled.
		err = ErrCallerGone
	}
	if errors.Is(err, ErrCallerGone) {
		l.log.WithField("phase", "caller-hangup-dialing").Info("transfer")
		t.res.Outcome = OutcomeCallFailed
		return nil, err
	}
	l.log.WithError(err).WithField("phase", "dial-failed").Warn("transfer")
	t.res.Outcome = OutcomeError
	return nil, nil
}

// persisted is the record of the current leg in state s.
func (t *Transfer) persisted(s record.TransferState) *record.Transfer {
	l := &t.leg
	return &record.Transfer{State: s, Number: l.target.Number, Resume: t.plan.Resume, Agent: t.plan.Agent,
		Digits: t.plan.Digits, DigitsDone: l.done, Dialed: l.dialed, RingDeadline: l.deadline, Answered: l.answered,
		Attempt: t.attempt + 1, Created: true, Targets: t.plan.Targets,
		CallerIDNumber: t.plan.CallerIDNumber, CallerIDName: t.plan.CallerIDName, Options: t.plan.Options.state()}
}

// errLegLost: a made leg ended before it was dialled.
var errLegLost = errors.New("leg gone before it was dialled")

// maxRemakes bounds how often a leg lost before its dial is made again.
const maxRemakes = 2

// makeLeg creates the bridge and makes the outbound leg in our app, then
// dials it. The leg is made in Stasis rather than originated into the
// app: an originated leg enters Stasis only when answered, and if no
// process has the app at that moment (the instant after a crash, before
// the standby connects) Asterisk hangs the answered far end up. A made
// leg is in Stasis from the start and waits, answered, for the process
// that takes over; its answer is a ChannelStateChange to Up. The bridge is
// created alongside, and the caller's ringback is sent without waiting.
func (t *Transfer) makeLeg(ctx context.Context) error {
	l := &t.leg
	bridgeDone := make(chan error, 1)
	if l.callerIn {
		bridgeDone <- nil // kept from the last transfer
	} else {
		go func() { bridgeDone <- t.createBridge(ctx) }()
	}
	var err error
	if l.ahead != nil {
		err = t.aheadMade(ctx)
	} else if err = t.create(ctx); unanswered(ctx, err) {
		err = t.createUnanswered(ctx, err)
	}
	berr := <-bridgeDone
	if unanswered(ctx, berr) {
		// No answer: made again under its ID, while Asterisk does not
		// answer (a cut closes every connection at once); a conflict
		// says the first was made after all.
		berr = t.retry(ctx, "making the bridge again", func() error {
			if err := t.createBridge(ctx); ari.StatusCode(err) != 409 {
				return err
			}
			return nil
		})
	}
	if err == nil {
		err = berr
	}
	if err == nil {
		err = t.dialWhenInApp(ctx)
	}
	// A leg made while the app had no connection (a create held up by a
	// stalled network, reaching Asterisk as the websocket reconnects) is
	// hung up by Asterisk before it is dialled. Nothing reached the far
	// end, so making it again is safe.
	for try := 1; errors.Is(err, errLegLost) && try <= maxRemakes; try++ {
		l.log.WithError(err).WithField("phase", "remake").Warn("transfer: the leg was lost before it was dialled; making it again")
		if err = t.renewLeg(ctx); err == nil {
			if err = t.create(ctx); err == nil {
				err = t.dialWhenInApp(ctx)
			}
		}
	}
	if err != nil {
		return err
	}
	t.startRingback(ctx)
	return nil
}

// startRingback sends the caller's ringback off the caller's path (none
// with early media: the far end's own sound is the ringback); its stop
// waits for it (stopRingback).
func (t *Transfer) startRingback(ctx context.Context) {
	if t.plan.Options.Ringback == flows.RingbackEarlyMedia {
		return
	}
	sent := make(chan struct{})
	t.leg.ringSent = sent
	go func() {
		defer close(sent)
		t.ringback(context.WithoutCancel(ctx))
	}()
}

// createUnanswered handles a create that got no answer (the connection
// cut, a timeout): the leg may or may not exist, and it was not dialled.
// It is hung up, should it exist, and counts as lost before its dial, so
// that it is made again under a new ID.
func (t *Transfer) createUnanswered(ctx context.Context, err error) error {
	if herr := t.env.ARI.Hangup(context.WithoutCancel(ctx), t.leg.id, "normal"); herr != nil && !ari.IsNotFound(herr) {
		return err // reconcile hangs up a leg of ours that no record names
	}
	return fmt.Errorf("%w: the create got no answer: %v", errLegLost, err)
}

// aheadMade is the create's answer for a leg made ahead. One refused, or
// without an answer (hung up, should it exist), counts as lost before its
// dial: it is made again, now.
func (t *Transfer) aheadMade(ctx context.Context) error {
	err := t.leg.ahead.result()
	switch {
	case err == nil:
		return nil
	case unanswered(ctx, err):
		return t.createUnanswered(ctx, err)
	}
	t.call.Disown(t.leg.id)
	return fmt.Errorf("%w: made ahead, refused: %v", errLegLost, err)
}

// createBridge creates the call's bridge for this leg; with a return key
// the bridge reports the caller's keys (ChannelDtmfReceived).
func (t *Transfer) createBridge(ctx context.Context) error {
	name := t.env.App + "/" + t.call.ID()
	if t.plan.Options.ReturnKey != "" {
		return t.env.ARI.CreateBridgeDTMFEvents(ctx, t.leg.bridge, name)
	}
	return t.env.ARI.CreateBridge(ctx, t.leg.bridge, name)
}

// create makes the leg in the app, not yet dialled. The far end sees the
// leg's caller ID as From and its connected line as P-Asserted-Identity.
// Both name and number are set on every leg (an empty name clears it):
// whatever is left out Asterisk copies from the originator, the caller.
// Name and number are validated; neither holds a quote. X- headers: names
// and values are validated (token names, no CR/LF), and a variable is set
// as a value, never evaluated as dialplan.
func (t *Transfer) create(ctx context.Context) error {
	return t.env.ARI.Create(ctx, t.createRequest())
}

// createRequest is the create of the current number's leg (create).
func (t *Transfer) createRequest() ari.CreateRequest {
	num, name := t.plan.CallerIDNumber, t.plan.CallerIDName
	vars := map[string]string{
		"CALLERID(num)": num, "CALLERID(name)": name,
		"CONNECTEDLINE(num,i)": num, "CONNECTEDLINE(name,i)": name,
	}
	for _, h := range t.plan.Options.Headers {
		vars["PJSIP_HEADER(add,"+h.Name+")"] = h.Value
	}
	t.traceHeader(vars)
	if isPJSIP(t.leg.target.Dial) {
		vars["PJSIP_HEADER(add,"+undialledMarker+")"] = "1"
		vars["PJSIP_HEADER(remove,"+undialledMarker+")"] = ""
	}
	return ari.CreateRequest{Endpoint: t.leg.target.Dial, App: t.env.App, AppArgs: LegArg + "," + t.call.ID(),
		ChannelID: t.leg.id, Originator: t.call.ID(), Variables: vars}
}

// dialWhenInApp dials the made leg once it is in the app: Asterisk
// answers the create before the channel has entered the app and refuses
// a dial until it has (409 "Channel not in Stasis application"). With
// early-media ringback the leg is bridged with the caller before it is
// dialled, so that whatever the far end sends before it answers reaches
// the caller. The record says "dialing" before the dial leaves: a process
// taking over never dials a leg twice.
func (t *Transfer) dialWhenInApp(ctx context.Context) error {
	// Written while the leg enters the app, not after: the write and the
	// StasisStart's way overlap (the event waits in the call's queue). A
	// process taking over between the write and the dial finds "dialing"
	// on a leg Asterisk proves undialled, and dials the number at once.
	if err := t.awaitCount(ctx); err != nil {
		return err
	}
	l := &t.leg
	stamp := func() {
		l.dialed = time.Now()
		l.deadline = l.dialed.Add(time.Duration(l.target.TimeoutS) * time.Second)
		ts := t.call.Record().Transfer
		ts.State, ts.Dialed, ts.RingDeadline = record.StateDialing, l.dialed, l.deadline
	}
	stamp()
	written := time.Now()
	if along := t.leg.along; along != nil {
		if err := t.setDialingCounted(ctx, along); err != nil {
			return err
		}
	} else if err := t.call.SetPhase(ctx, record.PhaseDialing); err != nil {
		t.leg.log.WithError(err).WithField("phase", "save-failed").Error("transfer: saving the call failed; nothing dialled")
		return fmt.Errorf("saving the dialing state: %w", err)
	}
	// Should this process's calls be left while the leg enters the app
	// (lease lost, stop), the leg stays undialled: whoever takes over
	// finds it proven so and dials the number at once.
	assumed, err := false, error(nil)
	if l.ahead == nil || !l.ahead.inApp {
		if assumed, err = t.awaitInApp(ctx); err != nil {
			return err
		}
	}
	if t.plan.Options.Ringback == flows.RingbackEarlyMedia {
		err := t.joinBridge(ctx)
		if unanswered(ctx, err) {
			err = t.joinUnanswered(ctx, err)
		}
		if err != nil {
			return err
		}
	}
	// The ring time counts from the dial, not from the create: a slow
	// entry into the app does not eat it. Saved again only when that
	// entry was slow, so that a process taking over waits as long.
	slow := time.Since(l.dialed) > time.Second
	stamp()
	if slow {
		written = time.Now()
		if err := t.call.Save(ctx); err != nil {
			t.leg.log.WithError(err).WithField("phase", "save-failed").Error("transfer: saving the call failed; nothing dialled")
			return fmt.Errorf("saving the dialing state: %w", err)
		}
	}
	// Once the record says "dialing", the dial leaves even if this
	// process's lease lapsed locally meanwhile or its calls are being left
	// this instant (lease lost, stop): whoever takes over waits for this
	// leg and never dials it, so a dial held back would keep the caller
	// waiting in silence until the ring timeout.
	l.notDialled = false
	err = t.env.ARI.Dial(ari.Written(ctx, written.Add(t.env.Written)), t.leg.id, ringFor(t.leg.deadline))
	for assumed && ari.StatusCode(err) == 409 {
		// Dialled on the word of a reconnect, and not in the app yet: its
		// StasisStart is still to come.
		if assumed, err = t.awaitInApp(ctx); err != nil {
			return err
		}
		err = t.env.ARI.Dial(ari.Written(ctx, written.Add(t.env.Written)), t.leg.id, ringFor(t.leg.deadline))
	}
	if l.ahead != nil && ari.IsNotFound(err) {
		// Made ahead and ended unseen meanwhile: nothing was dialled.
		t.forgetLeg()
		return fmt.Errorf("%w: %s, made ahead, gone at its dial", errLegLost, l.id)
	}
	if unanswered(ctx, err) {
		// No answer (the connection cut): the dial may have left. The
		// leg is watched as dialled. A moment later Asterisk is asked
		// (unsureCheck); should it still be down long past its ring
		// deadline, it never was (neverDialled).
		t.leg.log.WithError(err).WithField("phase", "dial-unanswered").Warn("transfer: the dial got no answer; watching the leg as dialled")
		t.dialUnsure = true
		return nil
	}
	return err
}

// ringFor is the dial timeout that ends the ringing at deadline: whole
// seconds, at least one (Asterisk takes 0 for "ring for ever").
func ringFor(deadline time.Time) time.Duration {
	return max(time.Until(deadline).Round(time.Second), time.Second)
}

// awaitInApp waits for the made leg's StasisStart; assumed says it was
// not seen but taken on the word of a reconnect (PathRenewed), so that a
// dial refused as not in the app yet waits for it after all.
func (t *Transfer) awaitInApp(ctx context.Context) (assumed bool, err error) {
	deadline := time.Now().Add(t.env.InAppWait)
	for {
		ev, err := t.call.Next(ctx, deadline)
		if errors.Is(err, ErrDeadline) {
			return false, t.notSeenInApp(ctx)
		}
		if err != nil {
			return false, err
		}
		switch e := ev.(type) {
		case *ari.StasisStart:
			if e.Channel.ID == t.leg.id {
				return false, nil
			}
		case *ari.ChannelDestroyed:
			if e.Channel.ID == t.leg.id {
				t.forgetLeg()
				return false, fmt.Errorf("%w: %s (cause %d %s)", errLegLost, e.Channel.ID, e.Cause, e.CauseTxt)
			}
		case *PathRenewed:
			if e.Leg == t.leg.id && t.plan.Options.Ringback != flows.RingbackEarlyMedia {
				t.leg.log.WithField("phase", "in-app-unseen").Info("transfer: the event path was made again as the leg entered the app; dialling it")
				return true, nil
			}
		}
	}
}

// notSeenInApp asks Asterisk about a made leg whose StasisStart did not
// come in time: that event may have gone out on a websocket being
// replaced. A leg that exists is dialled (a dial before it entered the
// app is refused, and the block takes Error); one that is gone is made
// again.
func (t *Transfer) notSeenInApp(ctx context.Context) error {
	st, err := t.env.ARI.ChannelState(ctx, t.leg.id)
	switch {
	case ari.IsNotFound(err):
		t.forgetLeg()
		return fmt.Errorf("%w: %s not in the app within %v, and gone", errLegLost, t.leg.id, t.env.InAppWait)
	case err != nil:
		return fmt.Errorf("leg %s made but not in the app within %v: %w", t.leg.id, t.env.InAppWait, err)
	}
	t.leg.log.WithFields(logrus.Fields{"phase": "in-app-unseen", "state": st}).Warn("transfer: the leg's entry into the app went unseen; dialling it")
	return nil
}

// renewLeg gives the transfer a new leg ID, saved before the leg is made
// (a process taking over finds the leg by it).
func (t *Transfer) renewLeg(ctx context.Context) error {
	rec := t.call.Record()
	t.leg.id, t.leg.ahead, t.leg.notDialled = t.env.NewID("leg"), nil, true
	rec.Outbound = t.leg.id
	rec.Transfer.State = record.StateCreated
	t.leg.log = t.leg.log.WithField("outbound", t.leg.id)
	t.call.Own(t.leg.id)
	return t.call.Save(ctx)
}

// ringback lets the caller hear that the far end rings: music on hold or
// the ringing tone.
func (t *Transfer) ringback(ctx context.Context) {
	t.call.Settle() // the caller out of the last transfer's bridge first
	a := t.env.ARI
	if t.plan.Options.Ringback == flows.RingbackMOH {
		if err := a.StartMOH(ctx, t.call.ID(), t.plan.Options.MOHClass); err == nil {
			return
		} else {
			t.log.WithError(err).Warn("music on hold failed; ringing instead")
		}
	}
	_ = a.Ring(ctx, t.call.ID())
}

// ringbackOff ends the caller's ringback: on answer whatever it is (early
// media ends with the bridge); when nobody answered only music on hold
// (the ringing tone ends with the next prompt, as in the dialplan).
func (t *Transfer) ringbackOff(ctx context.Context, answered bool) {
	t.stopRingback(ctx, t.leg.ringSent, answered)
}

// stopRingback is ringbackOff once the ringback's own request (sent; nil
// when this process sent none) is through: a stop that overtook it, as
// when the far end answers at once while the ringback waits for the last
// transfer's clean-up (Settle), would leave the caller hearing the ringing
// tone over the call.
func (t *Transfer) stopRingback(ctx context.Context, sent <-chan struct{}, answered bool) {
	after := func() {
		if sent != nil {
			<-sent
		}
	}
	bg := context.WithoutCancel(ctx)
	switch t.plan.Options.Ringback {
	case flows.RingbackEarlyMedia:
	case flows.RingbackMOH:
		after()
		_ = t.env.ARI.StopMOH(bg, t.call.ID())
	default:
		if answered {
			after()
			_ = t.env.ARI.StopRing(bg, t.call.ID())
		}
	}
}

// answered is the far end's answer: screened first if the block says so,
// then bridged with the caller.
func (t *Transfer) answered(ctx context.Context) (state, error) {
	t.answer()
	return t.screen(ctx)
}

// answer records the answer.
func (t *Transfer) answer() {
	t.leg.answered = time.Now()
	t.res.Outcome, t.res.RingTime, t.res.Answered = OutcomeSuccess, t.leg.answered.Sub(t.leg.dialed), t.leg.answered
	if ts := t.call.Record().Transfer; ts != nil {
		ts.Answered = t.leg.answered
	}
	t.legEvent(LegAnswered)
}

// callerPresent tells whether the caller's channel still exists (an
// error counts as present: do not give up on a caller by guesswork).
func (t *Transfer) callerPresent(ctx context.Context) bool {
	ok, err := t.env.ARI.ChannelExists(ctx, t.call.ID())
	return ok || err != nil
}

// legMissing tells whether the outbound channel no longer exists.
func (t *Transfer) legMissing(ctx context.Context) bool {
	exists, err := t.env.ARI.ChannelExists(ctx, t.leg.id)
	return err == nil && !exists
}

// releaseSlot gives back the current leg's concurrency slot: kept for the
// next count (slot.go) where the call can keep it, else off the caller's
// path.
func (t *Transfer) releaseSlot() {
	if t.leg.slot == "" || t.gate == nil {
		return
	}
	s := EndedSlot{Slot: t.leg.slot, Gate: t.gate}
	t.leg.slot = ""
	if _, ok := t.call.(slotCall); !ok {
		s.ReleaseLater(t.call, t.log)
		return
	}
	t.releaseEnded("") // an older one, not counted since
	t.endedSlot = s
}

// count adds one to v's label, when the metric is set.
func (t *Transfer) count(v *prometheus.CounterVec, label string) {
	if v != nil {
		v.WithLabelValues(label).Inc()
	}
}
