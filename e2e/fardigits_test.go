package e2e

import (
	"fmt"
	"strings"
	"time"
)

// The carrier Asterisk can publish one DTMF end twice (docs/chaos.md,
// "The far end reports a digit twice"): an end whose begin it dropped,
// read in a burst after its channel thread stalled, is published, deferred
// to the channel's read queue, and published again when read from there.
// The copy repeats the digit with the same duration, once Asterisk's
// minimum tone (emulated) and minimum gap between digits have passed and
// the idle channel's thread wakes again (Stasis waits up to 200 ms for a
// frame). No flow the far ends are scored on repeats a digit back to
// back, and a second request for a digit can only come from another
// process after a takeover, once the lease (0.8 s) has lapsed: a repeat
// stamped within carrierDupWindow is the carrier's.
const carrierDupWindow = 500 * time.Millisecond

// splitCarrierDups splits a far end's digits into those the wire carried
// and the carrier's duplicates: a digit that repeats the one before it,
// with the same duration, stamped less than carrierDupWindow after it.
func splitCarrierDups(ds []Digit) (wire, dups []Digit) {
	for i, d := range ds {
		if i > 0 {
			p := ds[i-1]
			gap := d.At.Sub(p.At)
			if d.Digit == p.Digit && d.Duration == p.Duration && !p.At.IsZero() && !d.At.IsZero() && gap >= 0 && gap < carrierDupWindow {
				dups = append(dups, d)
				continue
			}
		}
		wire = append(wire, d)
	}
	return wire, dups
}

// farScore is what a far end's digits say against the digits the flow
// sends it.
type farScore struct {
	wire        string  // the digits less the carrier's duplicates
	carrierDups []Digit // the duplicates
	sentTwice   int     // digits received again (digitDiff)
	skipped     int     // digits sent and never received
}

func scoreFarDigits(expect string, ds []Digit) farScore {
	wire, dups := splitCarrierDups(ds)
	s := farScore{wire: digitString(wire), carrierDups: dups}
	s.sentTwice, s.skipped = digitDiff(expect, s.wire)
	return s
}

func digitString(ds []Digit) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.Digit)
	}
	return b.String()
}

// formatFarDigits prints digits with Asterisk's stamps and durations.
func formatFarDigits(ds []Digit) string {
	if len(ds) == 0 {
		return "(none)"
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%s@%s/%dms", d.Digit, d.At.Format("15:04:05.000"), d.Duration.Milliseconds())
	}
	return strings.Join(parts, " ")
}
