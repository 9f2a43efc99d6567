package record

import (
	"errors"
	"testing"
)

// The transitions a call makes, and some it must never make: a call that
// is ending does nothing but end.
func TestCheckTransition(t *testing.T) {
	for _, tc := range []struct {
		from, to Phase
		ok       bool
	}{
		{"", PhaseFlow, true},
		{"", PhaseDialing, false},
		{PhaseFlow, PhaseDialing, true},
		{PhaseDialing, PhaseBridged, true},
		{PhaseBridged, PhaseFlow, true},
		{PhaseFlow, PhaseDialplan, true},
		{PhaseDialplan, PhaseFlow, true},
		{PhaseDialplan, PhaseBridged, false},
		{PhaseFlow, PhaseEnding, true},
		{PhaseDialing, PhaseEnding, true},
		{PhaseBridged, PhaseEnding, true},
		{PhaseEnding, PhaseEnding, true},
		{PhaseEnding, PhaseFlow, false},
		{PhaseEnding, PhaseDialing, false},
		{PhaseDialplan, PhaseEnding, false},
		{PhaseFlow, PhasePBX, true},
		{PhasePBX, PhaseFlow, true},
		{PhasePBX, PhaseEnding, true},
		{PhasePBX, PhaseDialing, false},
		{PhaseDialing, PhasePBX, false},
	} {
		err := CheckTransition(tc.from, tc.to)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrBadTransition) {
			t.Errorf("%q -> %q: %v, want allowed %v", tc.from, tc.to, err, tc.ok)
		}
	}
}
