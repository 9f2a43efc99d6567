package e2e

import (
	"testing"
	"time"
)

func TestOfflineScoreFarDigits(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 19, 47, 314e6, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	d := func(digit string, at time.Time) Digit {
		return Digit{Digit: digit, At: at, Duration: 100 * time.Millisecond}
	}
	cases := []struct {
		name               string
		expect             string
		ds                 []Digit
		wire               string
		carrierDups        int
		sentTwice, skipped int
	}{
		{"clean", "12", []Digit{d("1", ms(0)), d("2", ms(205))}, "12", 0, 0, 0},
		// As the carrier reported it after a stall (the experiment).
		{"carrier burst duplicate", "12", []Digit{d("1", ms(0)), d("2", ms(0)), d("2", ms(125))}, "12", 1, 0, 0},
		{"duplicate late in its window", "12", []Digit{d("1", ms(0)), d("2", ms(1)), d("2", ms(499))}, "12", 1, 0, 0},
		{"repeat at the window is sent twice", "12", []Digit{d("1", ms(0)), d("2", ms(200)), d("2", ms(700))}, "122", 0, 1, 0},
		{"resend after a takeover", "12", []Digit{d("1", ms(0)), d("2", ms(200)), d("2", ms(2400))}, "122", 0, 1, 0},
		{"another duration is another tone", "12", []Digit{d("1", ms(0)), d("2", ms(0)), {Digit: "2", At: ms(100), Duration: 60 * time.Millisecond}}, "122", 0, 1, 0},
		{"no stamps: not judged", "12", []Digit{d("1", time.Time{}), d("2", time.Time{}), d("2", time.Time{})}, "122", 0, 1, 0},
		{"stamped out of order: not judged", "12", []Digit{d("1", ms(0)), d("2", ms(100)), d("2", ms(50))}, "122", 0, 1, 0},
		{"a different digit is not a duplicate", "123", []Digit{d("1", ms(0)), d("2", ms(10)), d("3", ms(20))}, "123", 0, 0, 0},
		{"first digit duplicated", "123", []Digit{d("1", ms(0)), d("1", ms(125)), d("2", ms(900)), d("3", ms(1800))}, "123", 1, 0, 0},
		{"duplicate and a digit missing", "123", []Digit{d("1", ms(0)), d("2", ms(0)), d("2", ms(125))}, "12", 1, 0, 1},
		{"sent twice beside a carrier duplicate", "12", []Digit{d("1", ms(0)), d("1", ms(1000)), d("2", ms(1000)), d("2", ms(1125))}, "112", 1, 1, 0},
		{"nothing", "12", nil, "", 0, 0, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := scoreFarDigits(tc.expect, tc.ds)
			if got.wire != tc.wire || len(got.carrierDups) != tc.carrierDups || got.sentTwice != tc.sentTwice || got.skipped != tc.skipped {
				t.Errorf("scoreFarDigits(%q, %s) = wire %q, carrier duplicates %d, sent twice %d, skipped %d; want %q, %d, %d, %d",
					tc.expect, formatFarDigits(tc.ds), got.wire, len(got.carrierDups), got.sentTwice, got.skipped,
					tc.wire, tc.carrierDups, tc.sentTwice, tc.skipped)
			}
		})
	}
}
