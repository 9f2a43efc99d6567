package transfer

import (
	"testing"

	"github.com/ariflow/ariflow/flows"
)

func TestOutcomeForCause(t *testing.T) {
	for _, tc := range []struct {
		cause int
		want  Outcome
	}{
		{CauseUserBusy, OutcomeCallFailed},          // 17
		{CauseNoUserResponse, OutcomeTimeout},       // 18
		{CauseNoAnswer, OutcomeTimeout},             // 19
		{CauseCongestion, OutcomeCallFailed},        // 34
		{CauseSwitchCongestion, OutcomeCallFailed},  // 42
		{CauseUnallocated, OutcomeCallFailed},       // 1
		{CauseNoRoute, OutcomeCallFailed},           // 3
		{CauseCallRejected, OutcomeCallFailed},      // 21
		{CauseDestOutOfOrder, OutcomeCallFailed},    // 27
		{CauseNetworkOutOfOrder, OutcomeCallFailed}, // 38
		// A leg that ends with normal clearing before it was answered was
		// not answered by anyone who wanted to talk: a failed call.
		{CauseNormalClearing, OutcomeCallFailed}, // 16
		{CauseSubscriberAbsent, OutcomeCallFailed},
		{CauseChanUnavailable, OutcomeCallFailed},
		{CauseTempFailure, OutcomeCallFailed},
		{0, OutcomeCallFailed},
		{999, OutcomeCallFailed},
	} {
		if got := OutcomeForCause(tc.cause); got != tc.want {
			t.Errorf("OutcomeForCause(%d) = %q, want %q", tc.cause, got, tc.want)
		}
	}
}

func TestOutcomeForDialStatus(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   Outcome
	}{
		{"ANSWER", OutcomeSuccess},
		{"BUSY", OutcomeCallFailed},
		{"CONGESTION", OutcomeCallFailed},
		{"CHANUNAVAIL", OutcomeCallFailed},
		{"NOANSWER", OutcomeTimeout},
		// Not final: the leg is still ringing, or ariflow itself cancelled.
		{"", ""},
		{"RINGING", ""},
		{"PROGRESS", ""},
		{"PROCEEDING", ""},
		{"CANCEL", ""},
		{"DONTCALL", ""},
		{"TORTURE", ""},
		{"INVALIDARGS", ""},
		{"answer", ""}, // case matters: Asterisk sends upper case
	} {
		if got := OutcomeForDialStatus(tc.status); got != tc.want {
			t.Errorf("OutcomeForDialStatus(%q) = %q, want %q", tc.status, got, tc.want)
		}
	}
}

func TestOutcomeBranch(t *testing.T) {
	for _, tc := range []struct {
		o    Outcome
		want string
	}{
		{OutcomeSuccess, flows.BranchSuccess},
		{OutcomeCallFailed, flows.BranchCallFailed},
		{OutcomeTimeout, flows.BranchTimeout},
		{OutcomeError, flows.BranchError},
		{"", flows.BranchError},
		{"bogus", flows.BranchError},
	} {
		if got := tc.o.Branch(); got != tc.want {
			t.Errorf("Outcome(%q).Branch() = %q, want %q", tc.o, got, tc.want)
		}
	}
}

func TestCauseText(t *testing.T) {
	for _, tc := range []struct {
		cause int
		want  string
	}{
		{0, "unknown"},
		{CauseUnallocated, "unallocated number"},
		{CauseNoRoute, "no route to destination"},
		{CauseNormalClearing, "normal clearing"},
		{CauseUserBusy, "user busy"},
		{CauseNoUserResponse, "no user responding"},
		{CauseNoAnswer, "no answer"},
		{CauseSubscriberAbsent, "subscriber absent"},
		{CauseCallRejected, "call rejected"},
		{CauseNumberChanged, "number changed"},
		{CauseDestOutOfOrder, "destination out of order"},
		{CauseInvalidNumber, "invalid number format"},
		{CauseFacilityRejected, "facility rejected"},
		{CauseCongestion, "circuit congestion"},
		{CauseNetworkOutOfOrder, "network out of order"},
		{CauseTempFailure, "temporary failure"},
		{CauseSwitchCongestion, "switch congestion"},
		{CauseChanUnavailable, "channel unavailable"},
		{CauseBearerNotAvail, "bearer capability not available"},
		{CauseInterworking, "interworking"},
		{102, "cause 102"},
		{-1, "cause -1"},
	} {
		if got := CauseText(tc.cause); got != tc.want {
			t.Errorf("CauseText(%d) = %q, want %q", tc.cause, got, tc.want)
		}
	}
}

func TestNotAnsweredOutcome(t *testing.T) {
	for _, tc := range []struct {
		cause  int
		status string
		want   Outcome
	}{
		{17, "", OutcomeCallFailed},
		{17, "NOANSWER", OutcomeCallFailed}, // the cause wins
		{19, "", OutcomeTimeout},
		{18, "BUSY", OutcomeTimeout},
		{21, "", OutcomeCallFailed},
		{34, "", OutcomeCallFailed},
		{1, "NOANSWER", OutcomeCallFailed}, // a SIP 404 shows as NOANSWER
		{16, "BUSY", OutcomeCallFailed},
		{16, "NOANSWER", OutcomeTimeout},
		{16, "CONGESTION", OutcomeCallFailed},
		{16, "CHANUNAVAIL", OutcomeCallFailed},
		{16, "ANSWER", OutcomeCallFailed}, // never Success before an answer
		{16, "CANCEL", OutcomeCallFailed},
		{16, "", OutcomeCallFailed},
		{0, "NOANSWER", OutcomeTimeout},
		{0, "BUSY", OutcomeCallFailed},
		{0, "", OutcomeCallFailed},
		{127, "NOANSWER", OutcomeCallFailed},
	} {
		if got := NotAnsweredOutcome(tc.cause, tc.status); got != tc.want {
			t.Errorf("NotAnsweredOutcome(%d, %q) = %s, want %s", tc.cause, tc.status, got, tc.want)
		}
	}
	for o, b := range map[Outcome]string{OutcomeSuccess: "Success", OutcomeCallFailed: "CallFailed",
		OutcomeTimeout: "Timeout", OutcomeError: "Error", "": "Error"} {
		if got := o.Branch(); got != b {
			t.Errorf("%q.Branch() = %s, want %s", o, got, b)
		}
	}
	for _, c := range []int{0, 1, 3, 16, 17, 18, 19, 20, 21, 22, 27, 28, 29, 34, 38, 41, 42, 44, 58, 127, 99} {
		if CauseText(c) == "" {
			t.Errorf("CauseText(%d) empty", c)
		}
	}
}
