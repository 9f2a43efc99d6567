package flows

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Ref
		wantErr string
	}{
		{"$.Attributes.shipper", Ref{NSAttributes, "shipper"}, ""},
		{"$.External.order.id", Ref{NSExternal, "order.id"}, ""},
		{"$.System.CallerNumber", Ref{NSSystem, SysCallerNumber}, ""},
		{"$.Transfer.Status", Ref{NSTransfer, TrStatus}, ""},
		{"$.Attributes.a-b_c9", Ref{NSAttributes, "a-b_c9"}, ""},
		{"$.Contact.x", Ref{}, `unknown namespace "Contact"`},
		{"$.attributes.x", Ref{}, `unknown namespace "attributes"`},
		{"$.Attributes.", Ref{}, "empty key"},
		{"$.Attributes", Ref{}, "empty key"},
		{"$.Attributes.a b", Ref{}, "key may only hold"},
		{"$.Attributes.a&b", Ref{}, "key may only hold"},
		{"Attributes.x", Ref{}, `must start with "$."`},
		{"", Ref{}, `must start with "$."`},
	} {
		got, err := ParseRef(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrBadRef) {
				t.Errorf("ParseRef(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRef(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("Ref.String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestParseValue(t *testing.T) {
	v, err := ParseValue("+4930123456")
	if err != nil || v.Ref != nil || v.Literal != "+4930123456" {
		t.Errorf("literal: %+v %v", v, err)
	}
	v, err = ParseValue("$.Attributes.x")
	if err != nil || v.Ref == nil || *v.Ref != (Ref{NSAttributes, "x"}) || v.String() != "$.Attributes.x" {
		t.Errorf("ref: %+v %v", v, err)
	}
	if _, err := ParseValue("$.Nope.x"); err == nil {
		t.Error("bad ref accepted")
	}
	if v, _ := ParseValue(""); !v.IsZero() {
		t.Error("empty is not zero")
	}
}

func TestAttributes(t *testing.T) {
	var zero Attributes
	if _, ok := zero.Get(Ref{NSAttributes, "x"}); ok {
		t.Error("zero Attributes has x")
	}
	a := Attributes{}
	a.Set(NSAttributes, "x", "1")
	a.Set(NSSystem, SysCallerNumber, "+4930555999")
	c := a.Clone()
	c.Set(NSAttributes, "x", "2")
	if v, _ := a.Get(Ref{NSAttributes, "x"}); v != "1" {
		t.Errorf("Clone shares maps: %q", v)
	}
	if v, ok := c.Get(Ref{NSSystem, SysCallerNumber}); !ok || v != "+4930555999" {
		t.Errorf("clone lost system attr: %q %v", v, ok)
	}
	if zero.Clone() != nil {
		t.Error("Clone(nil) != nil")
	}
}

func TestResolve(t *testing.T) {
	a := Attributes{}
	a.Set(NSAttributes, "shipper", "+4930123456")
	a.Set(NSAttributes, "empty", "")
	a.Set(NSExternal, "status", "ok")
	ref := func(ns Namespace, k string) Value { return Value{Ref: &Ref{ns, k}} }
	for _, tc := range []struct {
		name    string
		v       Value
		want    string
		wantErr string
	}{
		{"literal", Value{Literal: "+4930111000"}, "+4930111000", ""},
		{"empty literal", Value{}, "", ""},
		{"attribute", ref(NSAttributes, "shipper"), "+4930123456", ""},
		{"external", ref(NSExternal, "status"), "ok", ""},
		{"missing", ref(NSAttributes, "nope"), "", "missing attribute: $.Attributes.nope"},
		{"empty value", ref(NSAttributes, "empty"), "", "missing attribute: $.Attributes.empty"},
		{"missing namespace", ref(NSTransfer, TrStatus), "", "missing attribute: $.Transfer.Status"},
	} {
		got, err := Resolve(tc.v, a)
		if tc.wantErr != "" {
			if !errors.Is(err, ErrMissingAttribute) || err.Error() != tc.wantErr {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
