// Package phone analyses phone numbers once. The analysis (parse,
// validity, country code, type) is most of a transfer's own CPU time,
// and the same numbers come back call after call and step after step: a
// transfer's target is normalised when its plan is resolved and checked
// against the dial policy a moment later. Both ask here, so a number is
// analysed once while it is remembered.
package phone

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/nyaruka/phonenumbers"

	"github.com/ariflow/ariflow/internal/memo"
)

// Why a number is not a usable E.164 number. Number.Err wraps one of them.
var (
	ErrUnparsable = errors.New("cannot be read as a phone number")
	ErrNotValid   = errors.New("not a valid number")
	ErrNotE164    = errors.New("not a valid E.164 number")
)

// Number is what the analysis made of a number as written.
type Number struct {
	// E164 is the number in E.164 ("+4930123456"); set when Err is nil.
	E164        string
	CountryCode int
	Type        phonenumbers.PhoneNumberType
	// Err is nil for a valid number; else it wraps ErrUnparsable (with
	// the parser's reason), ErrNotValid or ErrNotE164.
	Err error
}

// MaxRemembered bounds the numbers remembered; past it the memory starts
// afresh (see memo.Map).
const MaxRemembered = 4096

var e164RE = regexp.MustCompile(`^\+[0-9]{6,15}$`)

// key is a number as written and the region it is read in. The region
// only matters for numbers without a leading '+': those with one are
// keyed without it, so "+4930..." read in "DE" and in "" is one entry.
type key struct{ raw, region string }

var analysed = memo.New(MaxRemembered, analyse)

// Analyse returns the analysis of raw read in region (ISO 3166 code such
// as "DE"; "" when raw starts with '+'). raw must be short: callers bound
// it first (E.164 has at most 15 digits), since every distinct raw is a key.
func Analyse(raw, region string) Number {
	if len(raw) > 0 && raw[0] == '+' {
		region = ""
	}
	return analysed.Get(key{raw, region})
}

// Remembered is how many analyses are held now.
func Remembered() int { return analysed.Len() }

func analyse(k key) Number {
	num, err := phonenumbers.Parse(k.raw, k.region)
	if err != nil {
		return Number{Err: fmt.Errorf("%w: %v", ErrUnparsable, err)}
	}
	if !phonenumbers.IsValidNumber(num) {
		return Number{Err: ErrNotValid}
	}
	out := phonenumbers.Format(num, phonenumbers.E164)
	if !e164RE.MatchString(out) {
		return Number{Err: ErrNotE164}
	}
	return Number{E164: out, CountryCode: int(num.GetCountryCode()), Type: phonenumbers.GetNumberType(num)}
}
