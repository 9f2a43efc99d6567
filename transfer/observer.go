package transfer

import "github.com/ariflow/ariflow/record"

// Observer is told of a transfer's course, for traces and call records:
// each state it enters, each number it is done with, and its end. Its
// methods run on the call's goroutine between the machine's steps and
// must return at once (no request, no wait).
type Observer interface {
	// TransferState: the transfer entered a state with its current number
	// (a fresh leg, or one taken over from a record). A state may be
	// reported twice (a leg's ringing is told by two events).
	TransferState(call Call, s StateChange)
	// NumberDone: a number of the block's list is done with (refused by
	// the dial policy, not answered, or answered and ended), attempt its
	// place (from 1).
	NumberDone(call Call, attempt int, res Result)
	// TransferEnded: the block is over; res as Run returns it, err as Run
	// returns it (the process stopping included).
	TransferEnded(call Call, res Result, err error)
	// Traceparent is the W3C trace context the current leg's INVITE
	// carries when the block asks for it (trace_header); "" for none.
	Traceparent(call Call) string
}

// StateChange is a state the transfer entered.
type StateChange struct {
	State   record.TransferState
	Number  string
	Attempt int    // the number's place in the block's list, from 1
	Leg     string // the outbound channel
}

// entered tells the Observer the transfer is in state s.
func (t *Transfer) entered(s record.TransferState) {
	if o := t.env.Observer; o != nil {
		o.TransferState(t.call, StateChange{State: s, Number: t.leg.target.Number, Attempt: t.attempt + 1, Leg: t.leg.id})
	}
}

// numberDone tells the Observer the current number is done with.
func (t *Transfer) numberDone() {
	if o := t.env.Observer; o != nil {
		o.NumberDone(t.call, t.attempt+1, t.res)
	}
}

// ended tells the Observer the block is over.
func (t *Transfer) ended(err error) {
	if o := t.env.Observer; o != nil {
		o.TransferEnded(t.call, t.res, err)
	}
}

// traceHeader adds the trace context to the leg's INVITE variables, when
// the block asks for it and the call is traced.
func (t *Transfer) traceHeader(vars map[string]string) {
	name := t.plan.Options.TraceHeader
	if name == "" || t.env.Observer == nil {
		return
	}
	if tp := t.env.Observer.Traceparent(t.call); tp != "" {
		vars["PJSIP_HEADER(add,"+name+")"] = tp
	}
}
