package flows

import "testing"

func TestEvaluate(t *testing.T) {
	lit := func(s string) Value { return Value{Literal: s} }
	ref := func(k string) Value { return Value{Ref: &Ref{NSAttributes, k}} }
	cond := func(op Operator, v Value, br string) Condition { return Condition{Op: op, Operand: v, Branch: br} }
	for _, tc := range []struct {
		name  string
		val   *string // nil: attribute not set
		conds []Condition
		want  string
	}{
		{"equals", ptr("1"), []Condition{cond(OpEquals, lit("1"), "Yes")}, "Yes"},
		{"equals is textual", ptr("1.0"), []Condition{cond(OpEquals, lit("1"), "Yes")}, BranchNoMatch},
		{"not equals", ptr("2"), []Condition{cond(OpNotEquals, lit("1"), "Other")}, "Other"},
		{"contains", ptr("parcel-lost"), []Condition{cond(OpContains, lit("lost"), "Lost")}, "Lost"},
		{"first match wins", ptr("5"), []Condition{cond(OpGreaterThan, lit("1"), "A"), cond(OpGreaterThan, lit("2"), "B")}, "A"},
		{"later match", ptr("5"), []Condition{cond(OpLessThan, lit("1"), "A"), cond(OpGreaterOrEq, lit("5"), "B")}, "B"},
		{"numeric not textual", ptr("10"), []Condition{cond(OpGreaterThan, lit("9"), "Big")}, "Big"},
		{"decimal", ptr("2.5"), []Condition{cond(OpLessOrEq, lit("2.5"), "Le")}, "Le"},
		{"negative", ptr("-3"), []Condition{cond(OpLessThan, lit("0"), "Neg")}, "Neg"},
		{"non-numeric no match", ptr("abc"), []Condition{cond(OpGreaterThan, lit("1"), "Big"), cond(OpLessThan, lit("1"), "Small")}, BranchNoMatch},
		{"NaN no match", ptr("NaN"), []Condition{cond(OpGreaterOrEq, lit("0"), "X"), cond(OpLessThan, lit("0"), "Y")}, BranchNoMatch},
		{"hex no match", ptr("0x10"), []Condition{cond(OpGreaterThan, lit("1"), "X")}, BranchNoMatch},
		{"missing compares as empty", nil, []Condition{cond(OpEquals, lit(""), "Empty")}, "Empty"},
		{"missing numeric no match", nil, []Condition{cond(OpLessThan, lit("1"), "X")}, BranchNoMatch},
		{"is set", ptr("x"), []Condition{cond(OpIsSet, Value{}, "Set")}, "Set"},
		{"is set empty", ptr(""), []Condition{cond(OpIsSet, Value{}, "Set")}, BranchNoMatch},
		{"is set missing", nil, []Condition{cond(OpIsSet, Value{}, "Set")}, BranchNoMatch},
		{"operand reference", ptr("7"), []Condition{cond(OpGreaterThan, ref("limit"), "Big")}, "Big"},
		{"operand reference missing", ptr("7"), []Condition{cond(OpGreaterThan, ref("nope"), "Big")}, BranchNoMatch},
		{"no conditions", ptr("1"), nil, BranchNoMatch},
	} {
		a := Attributes{}
		a.Set(NSAttributes, "limit", "5")
		if tc.val != nil {
			a.Set(NSAttributes, "x", *tc.val)
		}
		c := &CheckAttribute{Attribute: Ref{NSAttributes, "x"}, Conditions: tc.conds}
		got, err := c.Evaluate(a)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	c := &CheckAttribute{Attribute: Ref{NSAttributes, "x"}, Conditions: []Condition{{Op: "Like", Branch: "X"}}}
	if _, err := c.Evaluate(nil); err == nil {
		t.Error("unknown operator: no error")
	}
}

func ptr(s string) *string { return &s }

func TestBranch(t *testing.T) {
	withValues := &GetCustomerInput{MaxDigits: 1, Values: []string{"1", "2"}}
	free := &GetCustomerInput{MaxDigits: 20}
	for _, tc := range []struct {
		name     string
		in       *GetCustomerInput
		digits   string
		timedOut bool
		want     string
	}{
		{"value 1", withValues, "1", false, "1"},
		{"value 2", withValues, "2", false, "2"},
		{"other digit", withValues, "3", false, BranchNoMatch},
		{"star", withValues, "*", false, BranchNoMatch},
		{"timeout", withValues, "", true, BranchTimeout},
		{"terminator only", withValues, "", false, BranchTimeout},
		{"digit then timeout", withValues, "2", true, "2"},
		{"free digits", free, "123456", false, BranchSuccess},
		{"free partial then timeout", free, "123", true, BranchSuccess},
		{"free timeout", free, "", true, BranchTimeout},
	} {
		if got := tc.in.Branch(tc.digits, tc.timedOut); got != tc.want {
			t.Errorf("%s: Branch(%q, %v) = %q, want %q", tc.name, tc.digits, tc.timedOut, got, tc.want)
		}
	}
}

// Every branch Branch can return must be one the validator requires, so a
// valid flow never hits a missing branch.
func TestBranchesAreRequired(t *testing.T) {
	for _, in := range []*GetCustomerInput{{Values: []string{"1", "2"}}, {}} {
		b := &Block{Type: TypeGetCustomerInput, Input: in}
		req, _ := branchRules(b)
		for _, d := range []string{"", "1", "2", "9"} {
			if br := in.Branch(d, d == ""); !contains(req, br) {
				t.Errorf("values %v: Branch(%q) = %q not in required %v", in.Values, d, br, req)
			}
		}
	}
}
