package transfer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
)

// The dial policy decides in two steps. Its rules that count nothing (the
// number, the call's transfers so far) are checked before anything is
// made: a refused number costs Asterisk nothing. Its counters (rates, the
// concurrency cap: a round trip to Redis) are counted while the leg is
// made, and the leg is dialled only once they admitted it; a leg they
// refuse is hung up undialled.

// errRefused: the policy refused the number; the list goes on.
var errRefused = errors.New("refused by the dial-out policy")

// counted is the verdict of the policy's counters on the current leg.
type counted struct {
	slot string
	err  error
}

// Slot names the concurrency slot of a call's n-th outbound leg (from
// 0). The name follows from the record, so a process that takes the call
// over gives the slot back when the adopted leg ends.
func Slot(callID string, n int) string { return callID + ":" + strconv.Itoa(n) }

// admit checks the current number against the policy's rules that count
// nothing, then starts counting it (awaitCount has the verdict). Refused,
// the number is not made, and its result says by which rule.
func (t *Transfer) admit(ctx context.Context) error {
	if t.gate == nil || t.leg.target.Ungated {
		t.releaseEnded("")
		return nil
	}
	leg := t.policyLeg()
	if err := t.gate.Check(leg); err != nil {
		t.releaseEnded("")
		return t.refused(err)
	}
	t.releaseEnded(leg.Ended)
	if ac, ok := t.call.(alongCall); ok && ac.CountsAlong() {
		if g, ok := t.gate.(alongGate); ok {
			if along, ok := g.CountAlong(leg); ok {
				// Counted by the "dialing" write itself (setDialingCounted): one
				// round trip before the dial where a count and the write
				// take two.
				t.leg.along = along
				return nil
			}
		}
	}
	verdict := make(chan counted, 1)
	t.leg.counting = verdict
	gate, call := t.gate, t.call
	go func() {
		call.Settle() // the last transfer's bookkeeping done first
		verdict <- counted{slot: leg.Slot, err: countPatiently(context.WithoutCancel(ctx), gate, leg)}
	}()
	return nil
}

// countPatience is how long the counters are asked again while Redis does
// not answer: the policy fails closed, and a Redis restart or failover of
// a second or two should not send callers to the Error branch.
const countPatience = 3 * time.Second

// countPatiently counts the leg, again (100 ms, then twice as long each
// time, at most 1 s apart) while the counters fail for want of Redis. A
// refusal is final. A count whose answer was lost may count the leg
// twice: the safe side of a cap.
func countPatiently(ctx context.Context, gate Gate, leg policy.Leg) error {
	deadline := time.Now().Add(countPatience)
	wait := 100 * time.Millisecond
	for {
		_, err := gate.Count(ctx, leg)
		var d *policy.Denied
		if err == nil || errors.As(err, &d) || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait = min(2*wait, time.Second)
	}
}

// policyLeg is the current number as the dial policy sees it.
func (t *Transfer) policyLeg() policy.Leg {
	rec := t.call.Record()
	sys := rec.Attributes[flows.NSSystem]
	leg := policy.Leg{Slot: Slot(t.call.ID(), rec.Transfers), Caller: sys[flows.SysCallerNumber], Entry: sys[flows.SysDialedNumber],
		Number: t.leg.target.Number, TransfersSoFar: rec.Transfers}
	if rec.Transfers > 0 {
		// The call's last counted leg has ended before this one is
		// counted (one leg at a time): its slot goes in the same step.
		leg.Ended = Slot(t.call.ID(), rec.Transfers-1)
	}
	return leg
}

// awaitCount waits for the counters' verdict on the current leg, once:
// admitted, the leg is counted in the record and holds its slot; refused,
// errRefused.
func (t *Transfer) awaitCount(ctx context.Context) error {
	verdict := t.leg.counting
	if verdict == nil {
		return nil
	}
	t.leg.counting = nil
	var v counted
	select {
	case v = <-verdict:
	case <-ctx.Done():
		// The count goes on and its slot lapses; the call stops here.
		return ctx.Err()
	}
	t.countAnswered(v.err)
	if v.err != nil {
		return t.refused(v.err)
	}
	// Counted before the leg's record is saved: the slot is named by it.
	t.call.Record().Transfers++
	t.leg.slot = v.slot
	return nil
}

// alongGate is a gate whose count can be made inside a record's write
// (*policy.Gate with its counters on Redis).
type alongGate interface {
	CountAlong(leg policy.Leg) (*policy.Along, bool)
}

// alongCall is a call whose record's write can carry the policy's count
// (the controller's, on the Redis store).
type alongCall interface {
	// CountsAlong tells whether SetPhaseAlong can be used.
	CountsAlong() bool
	// SetPhaseAlong is SetPhase with along's count made first, in the
	// same write: when it refuses the leg, the record is neither changed
	// nor written, and the error is along's verdict (a *policy.Denied).
	SetPhaseAlong(ctx context.Context, p record.Phase, along *policy.Along) error
}

// setDialingCounted writes the record's "dialing" phase together with the
// policy's count of the leg (admit chose so). The slot the record names
// is the leg's whatever the answer: a write without an answer may have
// taken it, and giving back a slot never taken is harmless. Refused, or
// the counters not reached (the write and the count are one), the number
// is refused and nothing was written.
func (t *Transfer) setDialingCounted(ctx context.Context, along *policy.Along) error {
	t.leg.along = nil
	rec := t.call.Record()
	// The count gives the last leg's slot back itself (policy.Leg.Ended).
	t.leg.slot = Slot(t.call.ID(), rec.Transfers)
	rec.Transfers++
	err := t.call.(alongCall).SetPhaseAlong(ctx, record.PhaseDialing, along)
	t.countAnswered(err)
	var d *policy.Denied
	switch {
	case err == nil:
		return nil
	case errors.As(err, &d):
		rec.Transfers--
		t.leg.slot = ""
		return t.refused(err)
	case stopping(ctx, err) || errors.Is(err, record.ErrFenced):
		t.leg.log.WithError(err).WithField("phase", "save-failed").Error("transfer: saving the call failed; nothing dialled")
		return fmt.Errorf("saving the dialing state: %w", err)
	}
	return t.refused(fmt.Errorf("dial policy and record: %w", err))
}

// refused records the policy's refusal of the current number.
func (t *Transfer) refused(err error) error {
	t.res.Outcome, t.res.DeniedBy = OutcomeDenied, "policy-unavailable"
	var d *policy.Denied
	if errors.As(err, &d) {
		t.res.DeniedBy = d.Rule
	}
	t.count(t.env.Metrics.Denied, t.res.DeniedBy)
	t.leg.log.WithError(err).WithField("rule", t.res.DeniedBy).Warn("transfer refused by the dial-out policy; nothing dialled")
	return fmt.Errorf("%w: %w", errRefused, err)
}
