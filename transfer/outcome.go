package transfer

import (
	"strconv"

	"github.com/ariflow/ariflow/flows"
)

// Outcome is how a transfer ended, and the branch it leads to.
type Outcome string

const (
	OutcomeSuccess    Outcome = "success"
	OutcomeCallFailed Outcome = "call-failed"
	OutcomeTimeout    Outcome = "timeout"
	OutcomeError      Outcome = "error"
	// OutcomeDenied: the dial-out policy refused the number; nothing was
	// dialled. It takes the Error branch.
	OutcomeDenied Outcome = "denied"
)

// Branch is the flow branch an outcome takes.
func (o Outcome) Branch() string {
	switch o {
	case OutcomeSuccess:
		return flows.BranchSuccess
	case OutcomeCallFailed:
		return flows.BranchCallFailed
	case OutcomeTimeout:
		return flows.BranchTimeout
	default:
		return flows.BranchError
	}
}

// Q.850 cause codes that decide a failed transfer's branch.
const (
	CauseUnallocated       = 1
	CauseNoRoute           = 3
	CauseNormalClearing    = 16
	CauseUserBusy          = 17
	CauseNoUserResponse    = 18
	CauseNoAnswer          = 19
	CauseSubscriberAbsent  = 20
	CauseCallRejected      = 21
	CauseNumberChanged     = 22
	CauseDestOutOfOrder    = 27
	CauseInvalidNumber     = 28
	CauseFacilityRejected  = 29
	CauseCongestion        = 34
	CauseNetworkOutOfOrder = 38
	CauseTempFailure       = 41
	CauseSwitchCongestion  = 42
	CauseChanUnavailable   = 44
	CauseBearerNotAvail    = 58
	CauseInterworking      = 127
)

// OutcomeForCause classifies why an outbound leg ended before answer.
// Everything that is not "nobody answered" is a failed call: the number
// was dialled, and the network or the far end said no.
func OutcomeForCause(cause int) Outcome {
	switch cause {
	case CauseNoUserResponse, CauseNoAnswer:
		return OutcomeTimeout
	default:
		return OutcomeCallFailed
	}
}

// OutcomeForDialStatus classifies Asterisk's DIALSTATUS, which the Dial
// event carries; "" means the status says nothing final.
func OutcomeForDialStatus(status string) Outcome {
	switch status {
	case "ANSWER":
		return OutcomeSuccess
	case "BUSY", "CONGESTION", "CHANUNAVAIL":
		return OutcomeCallFailed
	case "NOANSWER":
		return OutcomeTimeout
	default: // "", RINGING, PROGRESS, PROCEEDING, CANCEL
		return ""
	}
}

// CauseText names a cause for the contact's Transfer attributes.
func CauseText(cause int) string {
	switch cause {
	case 0:
		return "unknown"
	case CauseUnallocated:
		return "unallocated number"
	case CauseNoRoute:
		return "no route to destination"
	case CauseNormalClearing:
		return "normal clearing"
	case CauseUserBusy:
		return "user busy"
	case CauseNoUserResponse:
		return "no user responding"
	case CauseNoAnswer:
		return "no answer"
	case CauseSubscriberAbsent:
		return "subscriber absent"
	case CauseCallRejected:
		return "call rejected"
	case CauseNumberChanged:
		return "number changed"
	case CauseDestOutOfOrder:
		return "destination out of order"
	case CauseInvalidNumber:
		return "invalid number format"
	case CauseFacilityRejected:
		return "facility rejected"
	case CauseCongestion:
		return "circuit congestion"
	case CauseNetworkOutOfOrder:
		return "network out of order"
	case CauseTempFailure:
		return "temporary failure"
	case CauseSwitchCongestion:
		return "switch congestion"
	case CauseChanUnavailable:
		return "channel unavailable"
	case CauseBearerNotAvail:
		return "bearer capability not available"
	case CauseInterworking:
		return "interworking"
	default:
		return "cause " + strconv.Itoa(cause)
	}
}

// NotAnsweredOutcome decides the outcome of a leg that ended before it was
// answered, from its hangup cause and the last DIALSTATUS seen (""
// when none). The cause is precise; an originated leg's DIALSTATUS is not
// (a SIP 404 shows as NOANSWER), so the status only decides when the
// cause says nothing (0, or 16 normal clearing).
func NotAnsweredOutcome(cause int, dialStatus string) Outcome {
	if cause == 0 || cause == CauseNormalClearing {
		if o := OutcomeForDialStatus(dialStatus); o != "" && o != OutcomeSuccess {
			return o
		}
	}
	return OutcomeForCause(cause)
}
