package phone_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/phone"
	"github.com/ariflow/ariflow/policy"
)

func TestAnalyse(t *testing.T) {
	for _, tc := range []struct {
		raw, region string
		e164        string
		cc          int
		typ         phonenumbers.PhoneNumberType
		err         error
	}{
		{"+4930123456", "", "+4930123456", 49, phonenumbers.FIXED_LINE, nil},
		{"030123456", "DE", "+4930123456", 49, phonenumbers.FIXED_LINE, nil},
		{"+4915112345678", "DE", "+4915112345678", 49, phonenumbers.MOBILE, nil},
		{"+4900", "", "", 0, 0, phone.ErrNotValid},
		{"030123456", "", "", 0, 0, phone.ErrUnparsable},
		{"abc", "DE", "", 0, 0, phone.ErrUnparsable},
	} {
		n := phone.Analyse(tc.raw, tc.region)
		if !errors.Is(n.Err, tc.err) || (tc.err == nil && n.Err != nil) {
			t.Errorf("Analyse(%q, %q) error = %v, want %v", tc.raw, tc.region, n.Err, tc.err)
			continue
		}
		if n.E164 != tc.e164 || n.CountryCode != tc.cc || n.Type != tc.typ {
			t.Errorf("Analyse(%q, %q) = %+v, want %s +%d type %d", tc.raw, tc.region, n, tc.e164, tc.cc, tc.typ)
		}
	}
}

// A transfer's target is normalised and then checked by the policy: the
// two must share one analysis, whatever region the flow reads numbers in.
func TestNormaliseAndPolicyShareOneAnalysis(t *testing.T) {
	const target = "+4989765432"
	before := phone.Remembered()
	e164, err := flows.NormalizeNumber(target, "DE")
	if err != nil {
		t.Fatal(err)
	}
	if err := policy.Default().CheckNumber(e164); err != nil {
		t.Fatal(err)
	}
	if got := phone.Remembered() - before; got != 1 {
		t.Errorf("normalise + policy check remembered %d analyses, want 1", got)
	}
}

// BenchmarkTransferTarget: what a transfer asks of the number analysis
// for its target (normalised, then checked by the policy), for a target
// seen before and for targets never seen.
func BenchmarkTransferTarget(b *testing.B) {
	p := policy.Default()
	target := func(raw string) {
		e164, err := flows.NormalizeNumber(raw, "DE")
		if err != nil {
			b.Fatal(err)
		}
		if err := p.CheckNumber(e164); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("seen", func(b *testing.B) {
		for b.Loop() {
			target("+4930111009")
		}
	})
	b.Run("new", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			target("+4930" + strconv.Itoa(1000000+i%5000000))
		}
	})
}
