package flows

import (
	"os"
	"strings"
	"testing"
)

func TestImportConnect(t *testing.T) {
	data, err := os.ReadFile("testdata/connect/shipping.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ImportConnect(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "shipping_import" || f.Start != "greet" || f.Version != "2019-10-30" {
		t.Errorf("header %q %q %q", f.Name, f.Start, f.Version)
	}
	tr := f.Blocks["xfer"].Transfer
	if tr == nil {
		t.Fatal("xfer is not a transfer")
	}
	if tr.Number.String() != "$.Attributes.shipper" || tr.Timeout.Literal != "30" || !tr.Resume ||
		tr.DTMF.String() != "$.Attributes.StoredCustomerInput" ||
		tr.CallerIDNumber.Literal != "+4930555000" || tr.CallerIDName.Literal != "ACME Support" {
		t.Errorf("transfer %+v", tr)
	}
	if got := f.Blocks["xfer"].Branches; got[BranchSuccess] != "solved" || got[BranchCallFailed] != "bye" || got[BranchTimeout] != "bye" {
		t.Errorf("transfer branches %v", got)
	}
	in := f.Blocks["ask"].Input
	if in.MaxDigits != 20 || in.Terminator != "#" || in.StoreAs != "StoredCustomerInput" {
		t.Errorf("ask %+v", in)
	}
	if v := f.Blocks["solved"].Input.Values; len(v) != 2 || f.Blocks["solved"].Branches["2"] != "check" {
		t.Errorf("solved values %v branches %v", v, f.Blocks["solved"].Branches)
	}
	if c := f.Blocks["check"].Check; c.Attribute.String() != "$.Transfer.TalkTime" || c.Conditions[0].Op != OpGreaterThan {
		t.Errorf("check %+v", c)
	}
	if f.Blocks["set-attrs"].Set == nil || f.Blocks["bye"].Type != TypeDisconnect {
		t.Error("set-attrs or bye wrong")
	}
}

func TestImportConnectErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{`, "connect flow:"},
		{`{"Actions": []}`, "no Actions"},
		{`{"StartAction": "a", "Actions": [{"Identifier": "a", "Type": "InvokeLambdaFunction"}]}`, "action a (InvokeLambdaFunction): action type not supported"},
		{`{"StartAction": "a", "Actions": [{"Identifier": "a", "Type": "MessageParticipant", "Parameters": {"Text": "Hello there"}}]}`, "not text-to-speech"},
		{`{"StartAction": "a", "Actions": [{"Identifier": "a", "Type": "TransferParticipantToThirdParty",
		   "Parameters": {"ThirdPartyPhoneNumber": "123&PJSIP/x", "ContinueFlowExecution": "False"},
		   "Transitions": {"Errors": [{"NextAction": "a", "ErrorType": "CallFailed"}, {"NextAction": "a", "ErrorType": "ConnectionTimeLimitExceeded"}]}}]}`,
			`invalid phone number "123&PJSIP/x"`},
	} {
		_, err := ImportConnect([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ImportConnect(%.40s) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// A flow with both timeout names imports the same way every time: the
// name Connect exports today wins.
func TestImportConnectBothTimeoutsDeterministic(t *testing.T) {
	in := []byte(`{"StartAction": "a", "Actions": [{"Identifier": "a", "Type": "TransferParticipantToThirdParty",
	  "Parameters": {"ThirdPartyPhoneNumber": "+4930123456", "ThirdPartyConnectionTimeoutSeconds": "20",
	                 "ThirdPartyConnectionTimeLimitSeconds": "45", "ContinueFlowExecution": "False"},
	  "Transitions": {"Errors": [{"NextAction": "a", "ErrorType": "CallFailed"}, {"NextAction": "a", "ErrorType": "ConnectionTimeLimitExceeded"}]}}]}`)
	for i := 0; i < 50; i++ {
		f, err := ImportConnect(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Blocks["a"].Transfer.Timeout.Literal; got != "45" {
			t.Fatalf("run %d: timeout %q, want 45 (ThirdPartyConnectionTimeLimitSeconds)", i, got)
		}
	}
}
