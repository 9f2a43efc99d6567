package transfer

import "github.com/ariflow/ariflow/record"

// A process whose lease lapses begins a new term and adopts its own calls
// again. A leg its last term made and never dialled may be gone by then:
// Asterisk hangs up a leg that enters the app while the app has no
// connection, as it has while the process connects anew. The record says
// "dialing" (written before the dial leaves), and a leg that is gone says
// nothing of whether the dial left: another process takes it for a number
// that failed. This process knows its dial never left, so it dials the
// number again, as it would a leg lost before its dial.

// notDialledCall is a call that carries that knowledge from one term of
// the process to the next (the controller's call).
type notDialledCall interface {
	// NotDialled notes that the process stops acting for the call with
	// leg made and its dial never sent.
	NotDialled(leg string)
	// WasNotDialled tells whether leg was noted so, and forgets it.
	WasNotDialled(leg string) bool
}

// noteNotDialled notes, as the process stops acting for the call, a leg
// this transfer made (or took undialled) and never sent the dial of.
func (t *Transfer) noteNotDialled() {
	if nc, ok := t.call.(notDialledCall); ok && t.leg.notDialled && t.leg.id != "" {
		nc.NotDialled(t.leg.id)
	}
}

// goneUndialled tells whether the adopted leg, gone, was made by this
// process's last term and never dialled.
func (t *Transfer) goneUndialled(saved record.TransferState) bool {
	nc, ok := t.call.(notDialledCall)
	return ok && saved == record.StateDialing && t.leg.id != "" && nc.WasNotDialled(t.leg.id)
}
