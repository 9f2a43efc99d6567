package transfer

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/policy"
)

// A counted leg holds a concurrency slot until it ends. The slot of a leg
// that has ended is not released at once when the call can keep it
// (slotCall): the next count gives it back inside its own script
// (policy.Leg.Ended), so the caller's way back to the next transfer sends
// Redis one request, not two racing each other. A number not counted
// (refused by a rule, not gated, counted by another gate) releases it
// before its leg is made; any other block, and the call's end, release it
// too (the controller).

// slotCall is a call that keeps the slot of its last counted leg from one
// block to the next (the controller's call).
type slotCall interface {
	// KeepSlot keeps s; one kept already is released first.
	KeepSlot(s EndedSlot)
	// TakeSlot hands over the slot kept (zero when none is).
	TakeSlot() EndedSlot
}

// EndedSlot is the concurrency slot of a leg that has ended, not given
// back yet, and the gate that counted it.
type EndedSlot struct {
	Slot string
	Gate Gate
}

// ReleaseLater gives s back off the caller's path (call.Later); a slot
// not given back lapses on its own.
func (s EndedSlot) ReleaseLater(call Call, log *logrus.Entry) {
	ReleaseLater(call, log, s.Gate, s.Slot)
}

// ReleaseLater gives slots of gate back off the caller's path
// (call.Later), in one step; empty ones are skipped.
func ReleaseLater(call Call, log *logrus.Entry, gate Gate, slots ...string) {
	slots = slices.DeleteFunc(slices.Clone(slots), func(s string) bool { return s == "" })
	if len(slots) == 0 || gate == nil {
		return
	}
	call.Later(func(ctx context.Context) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := gate.Release(rctx, slots...); err != nil {
			log.WithError(err).Warn("transfer: releasing the legs' concurrency slots failed; they lapse on their own")
		}
	})
}

// takeSlot takes the slot the call kept from its last transfer.
func (t *Transfer) takeSlot() {
	if sc, ok := t.call.(slotCall); ok {
		t.endedSlot = sc.TakeSlot()
	}
}

// keepSlot hands the slot of the last leg, not given back by a count, to
// the call for its next block (only a slotCall's transfers hold one).
func (t *Transfer) keepSlot() {
	if sc, ok := t.call.(slotCall); ok && t.endedSlot.Slot != "" {
		sc.KeepSlot(t.endedSlot)
		t.endedSlot = EndedSlot{}
	}
}

// releaseEnded releases the slot of the last leg now (off the caller's
// path), unless it is given, the slot the count about to be made with this
// transfer's gate gives back ("": no count gives it back).
func (t *Transfer) releaseEnded(given string) {
	s := t.endedSlot
	if s.Slot == "" || s.Slot == given && s.Gate == t.gate {
		return
	}
	s.ReleaseLater(t.call, t.log)
	t.endedSlot = EndedSlot{}
}

// countAnswered notes the answer of the current leg's count: admitted or
// refused, its script gave the last leg's slot back; any other error may
// have kept it from running.
func (t *Transfer) countAnswered(err error) {
	var d *policy.Denied
	if err == nil || errors.As(err, &d) {
		t.endedSlot = EndedSlot{}
	}
}
