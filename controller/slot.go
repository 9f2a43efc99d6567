package controller

import (
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// The slot of a transfer's leg that has ended is kept by the call until
// its next block (transfer/slot.go): a transfer's count gives it back in
// its own script, any other block releases it, and so does the call's
// end.

// KeepSlot keeps s for the next transfer; one kept already goes.
func (c *call) KeepSlot(s transfer.EndedSlot) {
	c.releaseSlot()
	c.slot = s
}

// TakeSlot hands the slot kept to the transfer starting now.
func (c *call) TakeSlot() transfer.EndedSlot {
	s := c.slot
	c.slot = transfer.EndedSlot{}
	return s
}

// releaseSlot releases the slot kept, if any, off the caller's path.
func (c *call) releaseSlot() {
	s := c.TakeSlot()
	s.ReleaseLater(c, c.log)
}

// adoptSlot keeps, for an adopted call between two blocks, the slot its
// last counted leg may still hold: the process that ran it may have kept
// it when it stopped. Giving back a slot already given back is harmless.
func (c *call) adoptSlot() {
	if c.rec.Transfers == 0 || c.rec.Phase == record.PhaseDialing || c.rec.Phase == record.PhaseBridged || c.rec.Phase == record.PhasePBX {
		return
	}
	c.slot = transfer.EndedSlot{Slot: transfer.Slot(c.id, c.rec.Transfers-1), Gate: c.gate()}
}
