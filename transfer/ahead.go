package transfer

import (
	"context"
	"maps"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/ari"
)

// A leg made ahead: while a transfer that resumes the caller talks, the
// leg of the transfer its Success branch leads to is made (created in the
// app, not dialled), so that the caller's way back from the far end costs
// no create. Nothing reaches the far end before the dial, and the policy
// counts the leg only with the "dialing" write, as any other. The record
// does not name it: a process taking the call over finds it owned by
// nobody and hangs it up (reconcile's orphan legs).

// Ahead is a leg made for a call's next transfer. The call keeps it
// (aheadCall), sees its events (Observe) and hangs it up when no transfer
// takes it (Drop).
type Ahead struct {
	ID  string
	req ari.CreateRequest // what it was made with
	// made has the create's answer; err and answered keep it once read.
	made     chan error
	err      error
	answered bool
	inApp    bool // its StasisStart has come
	gone     bool // it ended
}

// aheadCall is a call that can keep a leg made ahead for its next
// transfer (the controller's call).
type aheadCall interface {
	// NextPlan is the plan of the transfer the flow goes to should the
	// current one end with the far end's hangup; false when that block is
	// not a transfer or its plan does not resolve.
	NextPlan() (Plan, bool)
	// KeepAhead keeps a, made for the next transfer: the call takes its
	// events (Observe) until a transfer takes it, and drops it when none
	// does. One already kept is dropped first.
	KeepAhead(a *Ahead)
	// TakeAhead hands over the leg kept, nil when none is.
	TakeAhead() *Ahead
}

// Observe takes the leg's own events while no transfer has it: true when
// ev was one of them.
func (a *Ahead) Observe(ev ari.Event) bool {
	mine := false
	for _, k := range ev.Keys() {
		mine = mine || k.ID == a.ID
	}
	if !mine {
		return false
	}
	switch ev.(type) {
	case *ari.StasisStart:
		a.inApp = true
	case *ari.StasisEnd, *ari.ChannelDestroyed, *ari.ChannelHangupRequest:
		a.gone = true
	}
	return true
}

// Found records what Asterisk said of the leg after the event path was
// made again (its events in the gap may be lost): gone, or there, and
// then in the app (it was made in the app, and stays in it undialled).
func (a *Ahead) Found(there bool) {
	if there {
		a.inApp = true
	} else {
		a.gone = true
	}
}

// result is the create's answer, waiting for it once.
func (a *Ahead) result() error {
	if !a.answered {
		a.err, a.answered = <-a.made, true
	}
	return a.err
}

// Drop hangs the leg up, off the caller's path (after its create's answer:
// a hangup that overtook the create would leave it). The call owns it
// until then, so that a reconcile meanwhile does not take it for an
// orphan.
func (a *Ahead) Drop(call Call, env *Env, why string) {
	log := call.Log().WithFields(logrus.Fields{"leg": a.ID, "reason": why})
	log.Debug("transfer: the leg made ahead is not used; hanging it up")
	call.Later(func(ctx context.Context) {
		defer call.Disown(a.ID)
		if a.result() != nil || a.gone {
			return
		}
		if err := goneThrice(func() error { return hangupAndDestroy(ctx, env.ARI, a.ID, "") }); err != nil {
			log.WithError(err).Warn("transfer: the leg made ahead did not go; reconcile will find it")
		}
	})
}

// makeAhead makes the leg of the transfer that follows this one's
// success, once this one talks: only for a transfer that resumes the
// caller, only when the next block is a transfer whose first number the
// policy's rules that count nothing admit, and not with a trace header
// (its value is the next leg's own).
func (t *Transfer) makeAhead(ctx context.Context) {
	t.aheadTried = true
	ac, ok := t.call.(aheadCall)
	if !ok || !t.env.LegAhead || !t.plan.Resume {
		return
	}
	p, ok := ac.NextPlan()
	if !ok || len(p.Targets) == 0 || p.Options.TraceHeader != "" {
		return
	}
	next := newTransfer(t.call, t.env, t.gate, p)
	next.leg = leg{target: p.Targets[0]}
	if t.gate != nil && !next.leg.target.Ungated {
		if err := t.gate.Check(next.policyLeg()); err != nil {
			return // refused at its start: nothing to make
		}
	}
	a := &Ahead{ID: t.env.NewID("leg"), made: make(chan error, 1)}
	next.leg.id = a.ID
	req := next.createRequest()
	a.req = req
	t.call.Own(a.ID)
	ac.KeepAhead(a)
	t.log.WithFields(logrus.Fields{"leg": a.ID, "number": next.leg.target.Number}).Debug("transfer: making the next transfer's leg ahead")
	go func() { a.made <- t.env.ARI.Create(context.WithoutCancel(ctx), req) }()
}

// useAhead hands the current number the leg the last transfer made ahead
// (held) when it is this transfer's first number and the leg was made with
// the very request this transfer would send, and has not ended; one that
// cannot serve goes.
func (t *Transfer) useAhead() *Ahead {
	a := t.held
	if a == nil {
		return nil
	}
	t.held = nil
	switch {
	case a.gone:
		t.call.Disown(a.ID)
		return nil
	case t.attempt != 0 || t.plan.Options.TraceHeader != "" || !sameCreate(a.req, t.createRequest()):
		a.Drop(t.call, t.env, "made for another leg")
		return nil
	}
	return a
}

// sameCreate tells whether two create requests make the same leg, their
// channel IDs aside.
func sameCreate(a, b ari.CreateRequest) bool {
	return a.Endpoint == b.Endpoint && a.App == b.App && a.AppArgs == b.AppArgs && a.Originator == b.Originator &&
		maps.Equal(a.Variables, b.Variables)
}
