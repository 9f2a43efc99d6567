package transfer

import (
	"strconv"
	"time"

	"github.com/ariflow/ariflow/flows"
)

// Result is how a transfer block ended: what the contact's $.Transfer
// attributes record.
type Result struct {
	Outcome  Outcome
	DeniedBy string // the policy rule, for OutcomeDenied
	Cause    int
	Number   string
	RingTime time.Duration
	TalkTime time.Duration
	Digits   string
	// Attempts is how many numbers of the block were tried (dialled or
	// refused by the policy).
	Attempts int
	// EndedBy says who ended an answered transfer (flows.EndedBy*).
	EndedBy  string
	Answered time.Time
	// SIPCode is the far end's final SIP response to a leg that was not
	// answered (486 busy, 404 unallocated, …), when Asterisk reports it
	// (ChannelDestroyed's tech_cause); 0 otherwise.
	SIPCode int
}

// Record sets the $.Transfer attributes from r.
func (r Result) Record(attrs flows.Attributes) {
	set := func(k, v string) { attrs.Set(flows.NSTransfer, k, v) }
	set(flows.TrStatus, string(r.Outcome))
	set(flows.TrCause, strconv.Itoa(r.Cause))
	set(flows.TrCauseText, CauseText(r.Cause))
	set(flows.TrRingTime, seconds(r.RingTime))
	set(flows.TrTalkTime, seconds(r.TalkTime))
	set(flows.TrDigitsSent, r.Digits)
	set(flows.TrNumber, r.Number)
	set(flows.TrDeniedBy, r.DeniedBy)
	set(flows.TrAttempts, strconv.Itoa(max(r.Attempts, 1)))
	set(flows.TrEndedBy, r.EndedBy)
	set(flows.TrAnswerTime, rfc3339(r.Answered))
	sip := ""
	if r.SIPCode > 0 {
		sip = strconv.Itoa(r.SIPCode)
	}
	set(flows.TrSIPCode, sip)
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// tryNext tells whether a list of numbers goes on after a number that
// ended so: not answered, or refused by the dial policy.
func tryNext(o Outcome) bool {
	return o == OutcomeCallFailed || o == OutcomeTimeout || o == OutcomeDenied
}
