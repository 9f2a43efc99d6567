package controller

import "testing"

func TestPresentedID(t *testing.T) {
	const caller, callerName = "+4917612345678", "Erika Mustermann"
	cases := []struct {
		name             string
		l                leg
		callerNum, cname string
		num, wantName    string
	}{
		{"both set", leg{cidNum: "+4930555000", cidName: "ACME"}, caller, callerName, "+4930555000", "ACME"},
		{"number only: no name, not the caller's", leg{cidNum: "+4930555000"}, caller, callerName, "+4930555000", ""},
		{"name only: the caller's number", leg{cidName: "ACME"}, caller, callerName, caller, "ACME"},
		{"neither: the caller", leg{}, caller, callerName, caller, callerName},
		{"neither, national caller number", leg{}, "030123456", callerName, "anonymous", callerName},
		{"neither, junk caller number", leg{}, "+49301;x=1", callerName, "anonymous", callerName},
		{"neither, anonymous caller", leg{}, "", "", "anonymous", ""},
		{"neither, caller name with a quote", leg{}, caller, `Evil" <sip:x@y>`, caller, ""},
		{"neither, caller name with a bidi override", leg{}, caller, "Erika \u202e", caller, ""},
		{"name only, junk caller number", leg{cidName: "ACME"}, "12&PJSIP/x", callerName, "anonymous", "ACME"},
	}
	for _, tc := range cases {
		num, name := presentedID(tc.l, tc.callerNum, tc.cname)
		if num != tc.num || name != tc.wantName {
			t.Errorf("%s: %q <%s>, want %q <%s>", tc.name, name, num, tc.wantName, tc.num)
		}
	}
}
