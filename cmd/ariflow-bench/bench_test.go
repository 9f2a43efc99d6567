package main

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSweep(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  string
	}{
		{"20", []int{20}, ""},
		{"20,100,150", []int{20, 100, 150}, ""},
		{" 20 , 100 ", []int{20, 100}, ""},
		{"", nil, `"" is not a number`},
		{"20,,100", nil, `"" is not a number`},
		{"20,x", nil, `"x" is not a number`},
		{"0", nil, `"0" is not a number`},
		{"-5", nil, `"-5" is not a number`},
		{"2.5", nil, `"2.5" is not a number`},
	} {
		got, err := parseSweep(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one with %s", tc.in, err, tc.err)
		case !slices.Equal(got, tc.want):
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPct(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct {
		v    []float64
		p    float64
		want float64
	}{
		{nil, 50, 0},
		{[]float64{7}, 99, 7},
		{v, 0, 1},
		{v, 50, 5}, // the lower of the two middle values: index (10-1)*0.5 = 4
		{v, 95, 9},
		{v, 99, 9},
		{v, 100, 10},
	} {
		if got := pct(tc.v, tc.p); got != tc.want {
			t.Errorf("pct(%v, %v) = %v, want %v", tc.v, tc.p, got, tc.want)
		}
	}
	if v[0] != 5 || v[1] != 1 {
		t.Errorf("pct sorted its input in place: %v", v)
	}
}

func point(conc int, sides ...side) *compareReport {
	return &compareReport{Concurrency: conc, Sides: sides}
}

func TestSweepRatios(t *testing.T) {
	af := side{Name: "ariflow", ResumeP50: 30, ResumeP99: 80, DTMFP99: 12, AsteriskCPUPer1000: 6, AriflowCPUPer1000: 3}
	dp := side{Name: "dialplan", ResumeP50: 20, ResumeP99: 100, DTMFP99: 10, AsteriskCPUPer1000: 4}
	r := sweepReport{Points: []*compareReport{
		point(20, af, dp),
		point(50, dp, af),                      // order of the sides does not matter
		point(100, af),                         // one side only: no ratio
		point(150, af, side{Name: "dialplan"}), // dialplan CPU not measured: no ratio
	}}
	got := r.ratios()
	want := sweepRatio{ResumeP50: 10, ResumeP99: -20, DTMFP99: 2, SystemCPU: 2.25, AsteriskCPU: 1.5}
	if len(got) != 2 || got[0].Concurrency != 20 || got[1].Concurrency != 50 {
		t.Fatalf("ratios %+v, want points 20 and 50", got)
	}
	for _, g := range got {
		g.Concurrency = 0
		if !sameRatio(g, want) {
			t.Errorf("ratio %+v, want %+v", g, want)
		}
	}
	var out bytes.Buffer
	r.print(&out)
	for _, line := range []string{
		"| 20 | 0/0 | ariflow | 30.0 / 0.0 / 80.0 | 0.0 / 12.0 | 6.0 | 3.0 | 0.0 |",
		"| 20 | 0/0 | dialplan | 20.0 / 0.0 / 100.0 | 0.0 / 10.0 | 4.0 | – | – |",
		"| 20 | +10.0 ms | -20.0 ms | +2.0 ms | 2.25× | 1.50× |",
		"| 50 | +10.0 ms | -20.0 ms | +2.0 ms | 2.25× | 1.50× |",
	} {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("no line %q in\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "| 100 | +") || strings.Contains(out.String(), "| 150 | +") {
		t.Errorf("a ratio for a point without both sides measured:\n%s", out.String())
	}
}

func sameRatio(a, b sweepRatio) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return eq(a.ResumeP50, b.ResumeP50) && eq(a.ResumeP99, b.ResumeP99) && eq(a.DTMFP99, b.DTMFP99) &&
		eq(a.SystemCPU, b.SystemCPU) && eq(a.AsteriskCPU, b.AsteriskCPU)
}

func TestLeaksAny(t *testing.T) {
	for _, tc := range []struct {
		l    leaks
		want bool
	}{
		{leaks{}, false},
		{leaks{Goroutines: -3}, false}, // fewer goroutines after the run is no leak
		{leaks{Goroutines: 1}, true},
		{leaks{Channels: 1}, true},
		{leaks{Bridges: 2}, true},
		{leaks{RedisKeys: 1}, true},
	} {
		if got := tc.l.any(); got != tc.want {
			t.Errorf("%+v.any() = %v, want %v", tc.l, got, tc.want)
		}
	}
}

// A sweep's point offers half its calls at once a second, or at most
// -sweep-rate with the calls held long enough to reach it.
func TestSweepPoint(t *testing.T) {
	for _, tc := range []struct {
		rate     float64
		n        int
		wantRate float64
		wantHold time.Duration
	}{
		{0, 20, 10, time.Second},
		{0, 150, 75, time.Second},
		{25, 20, 10, time.Second},
		{25, 100, 25, 3 * time.Second},
		{25, 150, 25, 5 * time.Second},
	} {
		p := options{hold: time.Second, sweepRate: tc.rate}.point(tc.n)
		if p.concurrency != tc.n || p.rate != tc.wantRate || p.hold != tc.wantHold {
			t.Errorf("-sweep-rate %v, %d at once: %d at once, %v/s, hold %v; want %v/s, hold %v", tc.rate, tc.n, p.concurrency, p.rate, p.hold, tc.wantRate, tc.wantHold)
		}
	}
}

func TestSideRuns(t *testing.T) {
	for _, tc := range []struct {
		o    options
		want []sideTurn
	}{
		{options{calls: 3000}, []sideTurn{{"ariflow", 1500}, {"dialplan", 1500}, {"dialplan", 1500}, {"ariflow", 1500}}},
		{options{calls: 7}, []sideTurn{{"ariflow", 3}, {"dialplan", 3}, {"dialplan", 4}, {"ariflow", 4}}},
		{options{calls: 1}, []sideTurn{{"ariflow", 1}, {"dialplan", 1}}},
		{options{calls: 600, profile: "cpu.out"}, []sideTurn{{"ariflow", 600}, {"dialplan", 600}}},
		{options{calls: 600, pbxPerf: "perf"}, []sideTurn{{"ariflow", 600}, {"dialplan", 600}}},
	} {
		if got := sideRuns(tc.o); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.o, got, tc.want)
		}
	}
}

// A side's figures come from all its runs together: percentiles of the
// samples of both, CPU and counts per call of both.
func TestSideAccFinish(t *testing.T) {
	a := &sideAcc{side: side{Name: "ariflow"}, kinds: map[string]float64{}}
	a.add(&sideRun{calls: 2, completed: 2, seconds: 1, resume: []float64{1, 2}, dtmf: []float64{200}})
	a.add(&sideRun{calls: 2, completed: 1, seconds: 3, resume: []float64{10}, errors: []string{"lost"}})
	a.astCPU, a.afCPU, a.trips = 0.08, 0.02, 18
	a.kinds["continue"], a.kinds["hangup"], a.kinds["none"] = 4, 2, 0
	s := a.finish()
	if s.Calls != 4 || s.Completed != 3 || s.Seconds != 4 || s.SetupRate != 1 {
		t.Errorf("calls %d completed %d seconds %v rate %v, want 4, 3, 4, 1", s.Calls, s.Completed, s.Seconds, s.SetupRate)
	}
	if s.ResumeP50 != 2 || s.ResumeP99 != 2 || s.DTMFP50 != 200 {
		t.Errorf("resume p50 %v p99 %v dtmf p50 %v, want 2, 2, 200", s.ResumeP50, s.ResumeP99, s.DTMFP50)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(s.AsteriskCPUPer1000, 20) || !near(s.AriflowCPUPer1000, 5) || s.RedisTripsPerCall != 4.5 {
		t.Errorf("asterisk %v ariflow %v per 1000, redis %v a call; want 20, 5, 4.5", s.AsteriskCPUPer1000, s.AriflowCPUPer1000, s.RedisTripsPerCall)
	}
	if s.ARIPerCall != 1.5 || len(s.ARIKinds) != 2 || s.ARIKinds["continue"] != 1 {
		t.Errorf("ARI %v a call by kind %v, want 1.5: continue 1, hangup 0.5", s.ARIPerCall, s.ARIKinds)
	}
	if !slices.Equal(s.Errors, []string{"lost"}) {
		t.Errorf("errors %v", s.Errors)
	}
}
