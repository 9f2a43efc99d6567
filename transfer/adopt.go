package transfer

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// Adopt carries on the transfer the call's record names, left by another
// process (or by this one in an earlier term). It asks Asterisk what
// became of the leg while nobody watched, tells the machine so as if it
// had just happened, and runs it from the state the record names: the
// same machine a fresh transfer runs.
func Adopt(ctx context.Context, call Call, env *Env, gate Gate) (Result, error) {
	rec := call.Record()
	ts := rec.Transfer
	if ts == nil { // written by a version that kept no transfer state
		ts = &record.Transfer{State: record.StateDialing, Resume: rec.Phase == record.PhaseBridged}
		if rec.Phase == record.PhaseBridged {
			ts.State = record.StateBridged
		}
		rec.Transfer = ts
	}
	t := newTransfer(call, env, gate, planOf(ts))
	t.adopted = true
	t.rejoin = ts.State == record.StateBridged || t.plan.Options.Ringback == flows.RingbackEarlyMedia
	t.attempt = min(max(ts.Attempt, 1), len(t.plan.Targets)) - 1
	t.leg = leg{id: rec.Outbound, bridge: rec.Bridge, target: t.plan.Targets[t.attempt],
		dialed: ts.Dialed, answered: ts.Answered, deadline: ts.RingDeadline, done: min(ts.DigitsDone, len(ts.Digits))}
	if rec.Transfers > 0 && !t.leg.target.Ungated {
		// Taken by the process that dialled (Transfers was counted before
		// the leg's record was saved): this process gives it back.
		t.leg.slot = Slot(call.ID(), rec.Transfers-1)
	}
	t.res = Result{Number: ts.Number}
	t.leg.log = t.log.WithFields(logrus.Fields{"number": ts.Number, "outbound": rec.Outbound, "adopted": true})
	s, err := t.resume(ctx, ts.State)
	if err == nil {
		err = t.run(ctx, s)
	}
	return t.finish(ctx, err)
}

// planOf rebuilds a plan from a record; records of older versions name
// one number only.
func planOf(ts *record.Transfer) Plan {
	p := Plan{Targets: ts.Targets, Digits: ts.Digits, Resume: ts.Resume, Agent: ts.Agent,
		CallerIDNumber: ts.CallerIDNumber, CallerIDName: ts.CallerIDName, Options: optionsOf(ts.Options)}
	if len(p.Targets) == 0 {
		p.Targets = []record.Target{{Number: ts.Number, Ungated: ts.Agent}}
	}
	return p
}

// resume enters the machine at the saved state, after asking Asterisk
// what became of the leg.
func (t *Transfer) resume(ctx context.Context, saved record.TransferState) (state, error) {
	var s state = &dialing{ringing: saved == record.StateRinging}
	switch saved {
	case record.StateEnded:
		// Ended unanswered; its result was saved before the flow went on.
		ts := t.call.Record().Transfer
		t.res.Outcome, t.res.Cause, t.res.SIPCode = Outcome(ts.Outcome), ts.Cause, ts.SIPCode
		t.leg.log.WithFields(logrus.Fields{"phase": "ended", "outcome": ts.Outcome}).Info("transfer: adopted after it ended unanswered")
		t.hangupLeg(ctx)
		return nil, nil
	case record.StateBridged:
		t.answerSaved()
		s = bridged{}
	case record.StateCreated:
		return t.resumeCreated(ctx)
	}
	legState, err := t.legState(ctx)
	if err != nil {
		return t.adoptFailed(ctx, err)
	}
	switch {
	case legState == "" && t.goneUndialled(saved):
		// Made by this process's last term, which stopped before the dial
		// left; Asterisk ended it since: nothing reached the far end.
		t.forgetLeg()
		t.dropUndialled(ctx)
		return t.startLeg(ctx)
	case legState == "":
		// The leg ended while nobody watched: its cause is unknown.
		return t.farEndHungUp(ctx, s, legEnd{})
	case s.name() == record.StateBridged:
		t.leg.log.WithField("phase", "bridged").Info("transfer: adopted while bridged")
		t.entered(record.StateBridged)
		if err := t.retry(ctx, "rejoining the bridge", func() error { return t.joinBridge(ctx) }); err != nil {
			return t.rejoinFailed(ctx, s, err)
		}
		return t.talk(), nil
	case legState == "Up":
		t.leg.log.WithField("phase", "answered").Info("transfer: answered while nobody watched; bridging")
		return t.answered(ctx)
	case legState == "Down" && saved == record.StateDialing && t.undialled(ctx):
		// The record says "dialing", but the last process stopped (or
		// lost the write's answer, or its dial's) before the dial left,
		// and Asterisk proves it: the number is dialled now, not after
		// the ring time.
		if t.dropUndialled(ctx) {
			return t.startLeg(ctx)
		}
		fallthrough
	default:
		t.leg.log.WithField("phase", "ringing").Info("transfer: adopted while ringing")
		t.entered(s.name())
		// The caller hears ringback again, should the last process have
		// stopped before it began it.
		t.startRingback(ctx)
		return s, nil
	}
}

// rejoinFailed decides what a refused rejoin of an adopted bridged call
// means. The far end that hangs up as the call is taken over leaves the
// bridge and the app before its channel is gone: Asterisk refuses to add
// it back (422 not in the app, or 400 once gone), while for a moment it
// still exists. A leg that was bridged leaves the app only by hanging up,
// so a refusal is its hangup, not an error: the caller resumes, and the
// leg is hung up should it linger.
func (t *Transfer) rejoinFailed(ctx context.Context, s state, err error) (state, error) {
	if stopping(ctx, err) {
		return nil, err
	}
	switch code := ari.StatusCode(err); {
	case t.legMissing(ctx):
	case !t.callerPresent(ctx):
		t.leg.log.WithField("phase", "caller-hangup-adopted").Info("transfer")
		t.hangupLeg(ctx)
		return nil, ErrCallerGone
	case code == 400 || code == 422:
		t.leg.log.WithError(err).WithField("phase", "leg-leaving").Info("transfer: the far end left the app as the call was taken over")
		t.hangupLeg(ctx)
	default:
		return t.adoptFailed(ctx, err)
	}
	return t.farEndHungUp(ctx, s, legEnd{})
}

// resumeCreated carries on a leg the last process made but had not yet
// dialled (the record says so before the dial leaves): it is dialled now,
// or made again if it never came to be.
func (t *Transfer) resumeCreated(ctx context.Context) (state, error) {
	t.leg.notDialled = true // the record says so: nobody dialled it
	legState, err := t.legState(ctx)
	if err == nil {
		err = t.ensureBridge(ctx)
	}
	if err != nil {
		return t.adoptFailed(ctx, err)
	}
	if legState == "" {
		t.leg.log.WithField("phase", "remake").Info("transfer: adopted a leg that was never made; making it")
		err = t.renewLeg(ctx)
		if err == nil {
			err = t.create(ctx)
		}
	} else {
		t.leg.log.WithField("phase", "dialing").Info("transfer: adopted a leg made but not dialled; dialling it")
	}
	if err == nil {
		err = t.dialWhenInAppAdopted(ctx)
	}
	if err != nil {
		if stopping(ctx, err) || errors.Is(err, ErrCallerGone) {
			return nil, err
		}
		return t.adoptFailed(ctx, err)
	}
	t.startRingback(ctx)
	t.entered(record.StateDialing)
	return &dialing{}, nil
}

// ensureBridge creates the leg's bridge if the last process stopped before
// it did: the state "created" is written before the bridge is made.
func (t *Transfer) ensureBridge(ctx context.Context) error {
	return t.retry(ctx, "making sure of the bridge", func() error {
		_, err := t.env.ARI.BridgeChannels(ctx, t.leg.bridge)
		if ari.IsNotFound(err) {
			t.leg.log.WithField("phase", "remake").Info("transfer: adopted a leg whose bridge was never made; making it")
			return t.createBridge(ctx)
		}
		return err
	})
}

// dialWhenInAppAdopted dials an adopted leg, which may already be in the
// app (its StasisStart went to the last process) or about to enter it.
func (t *Transfer) dialWhenInAppAdopted(ctx context.Context) error {
	if t.plan.Options.Ringback == flows.RingbackEarlyMedia {
		if err := t.retry(ctx, "bridging the adopted leg", func() error { return t.joinBridge(ctx) }); err != nil {
			return err
		}
	}
	rec := t.call.Record()
	rec.Transfer.State = record.StateDialing
	if err := t.call.Save(ctx); err != nil {
		return err
	}
	return t.retry(ctx, "dialling the adopted leg", func() error {
		t.leg.notDialled = false
		err := t.env.ARI.Dial(ctx, t.leg.id, ringFor(t.leg.deadline))
		if ari.StatusCode(err) == 409 {
			return errRetryable{err} // not in the app yet
		}
		return err
	})
}

// answerSaved restores an answered transfer's result from its record.
func (t *Transfer) answerSaved() {
	t.res.Outcome, t.res.Answered = OutcomeSuccess, t.leg.answered
	if !t.leg.answered.IsZero() {
		t.res.RingTime = t.leg.answered.Sub(t.leg.dialed)
	}
}

// adoptFailed ends an adoption Asterisk did not answer for (after the
// retries) or refused: the block's Error branch, never a hangup of a
// caller who could still be served. The leg is left to the call's end (or
// reconcile) to hang up.
func (t *Transfer) adoptFailed(ctx context.Context, err error) (state, error) {
	if stopping(ctx, err) {
		return nil, err
	}
	t.leg.log.WithError(err).WithField("phase", "adopt-failed").Error("transfer: Asterisk refused or did not answer while adopting the transfer; taking its Error branch")
	t.res.Outcome = OutcomeError
	t.hangupLeg(ctx)
	return nil, nil
}

// legState is the outbound leg's channel state ("" when it is gone),
// asked again while Asterisk does not answer.
func (t *Transfer) legState(ctx context.Context) (string, error) {
	if t.leg.id == "" {
		return "", nil
	}
	var st string
	err := t.retry(ctx, "asking for the leg", func() error {
		var err error
		st, err = t.env.ARI.ChannelState(ctx, t.leg.id)
		if ari.IsNotFound(err) {
			st, err = "", nil
		}
		return err
	})
	return st, err
}
