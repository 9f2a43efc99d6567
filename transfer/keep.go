package transfer

import "github.com/ariflow/ariflow/flows"

// bridgeKeeper is a call that can keep a transfer's bridge, with the
// caller in it, for the next transfer (the controller's call). A kept
// bridge saves that transfer two requests, its bridge's create and
// destroy, and takes both off the caller's way back from the far end.
type bridgeKeeper interface {
	// KeepBridge says that the bridge the record names stays, with the
	// caller in it, after the transfer that made it ended; kind says how
	// it was made and joined (bridgeKind).
	KeepBridge(kind string)
	// TakeBridge hands the kept bridge to a transfer that needs one of
	// kind, or "" when none is kept or the one kept is of another kind
	// (which then goes, off the caller's path).
	TakeBridge(kind string) string
}

// bridgeKind names how the transfer's bridge is made and the caller
// joined: with a return key the bridge reports the caller's keys and the
// caller's keys are absorbed (createBridge, join).
func (t *Transfer) bridgeKind() string {
	if t.plan.Options.ReturnKey != "" {
		return "dtmf"
	}
	return "plain"
}

// takeKeptBridge gives the leg the call's kept bridge if the transfer can
// use it: ringing is the caller's ringback (music on hold and early media
// start from a caller out of any bridge, as they were made for).
func (t *Transfer) takeKeptBridge() (string, bool) {
	k, ok := t.call.(bridgeKeeper)
	if !ok {
		return "", false
	}
	kind := t.bridgeKind()
	if t.plan.Options.Ringback != flows.RingbackRing && t.plan.Options.Ringback != "" {
		kind = "none" // no kept bridge is of this kind: it goes
	}
	id := k.TakeBridge(kind)
	return id, id != ""
}

// keepBridge hands the ended transfer's bridge, the caller in it, to the
// call for its next transfer.
func (t *Transfer) keepBridge() bool {
	k, ok := t.call.(bridgeKeeper)
	if !ok || t.call.Record().Bridge == "" {
		return false
	}
	k.KeepBridge(t.bridgeKind())
	return true
}
