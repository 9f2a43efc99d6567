package transfer

import "testing"

func TestPresentedID(t *testing.T) {
	const caller, callerName = "+4917612345678", "Erika Mustermann"
	cases := []struct {
		name             string
		cidNum, cidName  string
		callerNum, cname string
		num, wantName    string
	}{
		{"both set", "+4930555000", "ACME", caller, callerName, "+4930555000", "ACME"},
		{"number only: no name, not the caller's", "+4930555000", "", caller, callerName, "+4930555000", ""},
		{"name only: the caller's number", "", "ACME", caller, callerName, caller, "ACME"},
		{"neither: the caller", "", "", caller, callerName, caller, callerName},
		{"neither, national caller number", "", "", "030123456", callerName, "anonymous", callerName},
		{"neither, junk caller number", "", "", "+49301;x=1", callerName, "anonymous", callerName},
		{"neither, anonymous caller", "", "", "", "", "anonymous", ""},
		{"neither, caller name with a quote", "", "", caller, `Evil" <sip:x@y>`, caller, ""},
		{"neither, caller name with a bidi override", "", "", caller, "Erika \u202e", caller, ""},
		{"name only, junk caller number", "", "ACME", "12&PJSIP/x", callerName, "anonymous", "ACME"},
	}
	for _, tc := range cases {
		num, name := presentedID(tc.cidNum, tc.cidName, tc.callerNum, tc.cname)
		if num != tc.num || name != tc.wantName {
			t.Errorf("%s: %q <%s>, want %q <%s>", tc.name, name, num, tc.wantName, tc.num)
		}
	}
}
