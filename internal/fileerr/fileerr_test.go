package fileerr

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestError(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{File: "flows/a.yaml", Line: 12, Msg: "block \"x\": missing type"}, "flows/a.yaml:12: block \"x\": missing type"},
		{&Error{File: "flows/a.yaml", Msg: "no flow in the file"}, "flows/a.yaml: no flow in the file"},
		{&Error{File: "policy.yaml", Line: -1, Msg: "a negative line is no line"}, "policy.yaml: a negative line is no line"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", *tc.err, got, tc.want)
		}
	}
}

func TestList(t *testing.T) {
	a1 := &Error{File: "a.yaml", Line: 1, Msg: "first"}
	a9 := &Error{File: "a.yaml", Line: 9, Msg: "ninth"}
	a0 := &Error{File: "a.yaml", Msg: "whole file"}
	b2 := &Error{File: "b.yaml", Line: 2, Msg: "second"}
	b2too := &Error{File: "b.yaml", Line: 2, Msg: "second, again"}
	for _, tc := range []struct {
		name       string
		list       List
		sorted     List
		wantString string
	}{
		{"empty", List{}, List{}, ""},
		{"one", List{a1}, List{a1}, "a.yaml:1: first"},
		{"by file, then line; the file's own first", List{b2, a9, a1, a0}, List{a0, a1, a9, b2},
			"a.yaml: whole file\na.yaml:1: first\na.yaml:9: ninth\nb.yaml:2: second"},
		{"ties keep their order", List{b2too, a1, b2}, List{a1, b2too, b2},
			"a.yaml:1: first\nb.yaml:2: second, again\nb.yaml:2: second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.list.Sort()
			if !slices.Equal(tc.list, tc.sorted) {
				t.Errorf("sorted %q, want %q", tc.list, tc.sorted)
			}
			if got := tc.list.Error(); got != tc.wantString {
				t.Errorf("Error() = %q, want %q", got, tc.wantString)
			}
		})
	}
}

// A List is an error a caller can take apart again.
func TestListAsError(t *testing.T) {
	var err error = fmt.Errorf("loading: %w", List{{File: "a.yaml", Line: 3, Msg: "bad"}})
	var l List
	if !errors.As(err, &l) || len(l) != 1 || l[0].Line != 3 {
		t.Fatalf("errors.As: %v %v", l, err)
	}
}
