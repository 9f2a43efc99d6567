package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v6"

	"github.com/ariflow/ariflow/e2e"
)

const (
	didAriflow = "+4930555070" // e2e/testdata/bench/bench.yaml
	didPBXDial = "+4930555075" // e2e/testdata/bench/bench-pbx.yaml: the same with dial_via: pbx
	didNative  = "+4930555080" // e2e/pbx-bench.conf
	shipperNum = "+4930123459"
	agentNum   = "+4930111009"
	digits     = "1234"
)

// callTimes are Asterisk's timestamps (carrier side) for one call.
type callTimes struct {
	shipperUp   time.Time
	firstDigit  time.Time
	shipperGone time.Time
	agentStart  time.Time
	ok          atomic.Bool
}

type side struct {
	Name               string  `json:"name"`
	Calls              int     `json:"calls"`
	Completed          int     `json:"completed"`
	Seconds            float64 `json:"seconds"`
	SetupRate          float64 `json:"setup_rate_per_s"`
	ResumeP50          float64 `json:"resume_latency_p50_ms"`
	ResumeP95          float64 `json:"resume_latency_p95_ms"`
	ResumeP99          float64 `json:"resume_latency_p99_ms"`
	DTMFP50            float64 `json:"dtmf_latency_p50_ms"`
	DTMFP99            float64 `json:"dtmf_latency_p99_ms"`
	AsteriskCPUPer1000 float64 `json:"asterisk_cpu_s_per_1000"`
	AriflowCPUPer1000  float64 `json:"ariflow_cpu_s_per_1000,omitempty"`
	RedisTripsPerCall  float64 `json:"redis_round_trips_per_call,omitempty"`
	RedisCmdsPerCall   float64 `json:"redis_commands_per_call,omitempty"`
	// ARIPerCall is ariflow's REST requests per call, and ARIKinds the
	// same by kind of request.
	ARIPerCall float64            `json:"ari_requests_per_call,omitempty"`
	ARIKinds   map[string]float64 `json:"ari_requests_per_call_by_kind,omitempty"`
	Errors     []string           `json:"errors,omitempty"`
}

type leaks struct {
	Channels   int `json:"channels"`
	Bridges    int `json:"bridges"`
	RedisKeys  int `json:"redis_keys"`
	Goroutines int `json:"goroutines_added"`
}

func (l leaks) any() bool { return l.Channels+l.Bridges+l.RedisKeys > 0 || l.Goroutines > 0 }

type compareReport struct {
	Calls          int       `json:"calls_per_side"`
	Concurrency    int       `json:"concurrency"`
	Rate           float64   `json:"rate_per_s"`
	HoldS          float64   `json:"shipper_hold_s"`
	Sides          []side    `json:"sides"`
	AriflowPeakRSS float64   `json:"ariflow_peak_rss_mb"`
	Leaks          leaks     `json:"leaks_after_run"`
	When           time.Time `json:"when"`
	// Via is who carried ariflow's side's transfers (ari, pbx).
	Via string `json:"via,omitempty"`
	// Tracing and Records: the run's ariflow traced and recorded every
	// call (-trace, -records); Spans the spans it exported.
	Tracing     bool    `json:"tracing"`
	Records     bool    `json:"records"`
	Spans       int64   `json:"spans_exported,omitempty"`
	RecordsSent float64 `json:"call_records_sent,omitempty"`
}

func compare(ctx context.Context, o options, s *e2e.Stack, af *e2e.Ariflow, carrier *e2e.Carrier) (*compareReport, error) {
	var calls sync.Map // caller number -> *callTimes
	carrier.Serve(shipperNum, func(r *e2e.Remote) { playShipper(ctx, o, r, &calls) })
	carrier.Serve(agentNum, func(r *e2e.Remote) {
		if v, ok := calls.Load(r.CallerNum); ok {
			v.(*callTimes).agentStart = r.Stamp
		}
		_ = r.Answer()
		time.Sleep(100 * time.Millisecond) // the agent says hello
		_ = r.Hangup()
	})
	astPid, err := asteriskPid(s)
	if err != nil {
		return nil, err
	}
	// Warm up both paths so that first-call costs are not measured.
	ariDID := didAriflow
	if o.via == "pbx" {
		ariDID = didPBXDial
	}
	for _, did := range []string{ariDID, didNative} {
		if _, err := runSide(ctx, o, s, carrier, &calls, did, 2, 2); err != nil {
			return nil, fmt.Errorf("warm-up on %s: %w", did, err)
		}
	}
	if err := s.WaitClean(ctx, 10*time.Second); err != nil {
		return nil, fmt.Errorf("after warm-up: %w", err)
	}
	goroutinesBefore := callGoroutines(af.HTTPAddr)
	rep := &compareReport{Calls: o.calls, Concurrency: o.concurrency, Rate: o.rate, HoldS: o.hold.Seconds(), When: time.Now().UTC(), Via: o.via}
	dids := map[string]string{"ariflow": ariDID, "dialplan": didNative}
	acc := map[string]*sideAcc{}
	for _, r := range sideRuns(o) {
		a := acc[r.name]
		if a == nil {
			a = &sideAcc{side: side{Name: r.name}, kinds: map[string]float64{}}
			acc[r.name] = a
		}
		astCPU0 := cpuSeconds(astPid)
		afCPU0 := cpuSeconds(af.Pid())
		trips0 := af.Metric("ariflow_redis_roundtrips_total")
		kinds0 := ariKinds(af.HTTPAddr)
		cmds0 := redisCommands(ctx, s)
		var profDone chan error
		if r.name == "ariflow" && (o.profile != "" || o.execTrace != "") {
			profDone = make(chan error, 1)
			secs := int(float64(r.calls)/o.rate) + 1
			kind, path := "profile", o.profile
			if path == "" {
				kind, path = "trace", o.execTrace
			}
			go func() { profDone <- fetchProfile(af.HTTPAddr, kind, secs, path) }()
		}
		stopPerf := startPBXPerf(o.pbxPerf, r.name, astPid)
		res, err := runSide(ctx, o, s, carrier, &calls, dids[r.name], r.calls, o.concurrency)
		stopPerf()
		if profDone != nil {
			if perr := <-profDone; perr != nil {
				fmt.Println("profile:", perr)
			}
		}
		if err != nil {
			return nil, err
		}
		a.add(res)
		if err := s.WaitClean(ctx, 15*time.Second); err != nil {
			a.Errors = append(a.Errors, err.Error())
		}
		a.astCPU += cpuSeconds(astPid) - astCPU0
		if r.name == "ariflow" {
			a.afCPU += cpuSeconds(af.Pid()) - afCPU0
			a.trips += af.Metric("ariflow_redis_roundtrips_total") - trips0
			a.cmds += float64(redisCommands(ctx, s) - cmds0)
			for k, n := range ariKinds(af.HTTPAddr) {
				a.kinds[k] += n - kinds0[k]
			}
		}
	}
	for _, name := range []string{"ariflow", "dialplan"} {
		rep.Sides = append(rep.Sides, acc[name].finish())
	}
	rep.AriflowPeakRSS = peakRSSMB(af.Pid())
	ch, br, keys, err := s.Leftovers(ctx)
	if err != nil {
		return nil, err
	}
	rep.Leaks = leaks{Channels: len(ch), Bridges: len(br), RedisKeys: len(keys),
		Goroutines: callGoroutines(af.HTTPAddr) - goroutinesBefore}
	return rep, nil
}

// playShipper is the shipping company's IVR: ring, answer, take the
// digits, talk, hang up.
func playShipper(ctx context.Context, o options, r *e2e.Remote, calls *sync.Map) {
	v, ok := calls.Load(r.CallerNum)
	if !ok {
		_ = r.Reject("unallocated")
		return
	}
	ct := v.(*callTimes)
	_ = r.Ring()
	time.Sleep(o.answerAfter) // ringing, as a person would let it
	if err := r.Answer(); err != nil {
		return
	}
	got := 0
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for got < len(digits) {
		ev, err := r.Event(cctx)
		if err != nil {
			return
		}
		switch e := ev.(type) {
		case *ari.ChannelStateChange:
			if e.Channel.State == "Up" {
				ct.shipperUp = e2e.EventTime(e)
			}
		case *ari.ChannelDtmfReceived:
			if got == 0 {
				ct.firstDigit = e2e.EventTime(e)
			}
			got++
		case *ari.ChannelDestroyed:
			return
		}
	}
	time.Sleep(o.hold) // the shipper's IVR talks
	_ = r.Hangup()
	for {
		ev, err := r.Event(cctx)
		if err != nil {
			return
		}
		// After StasisEnd the app hears nothing more of the channel, so the
		// first of these marks the hangup.
		switch ev.(type) {
		case *ari.ChannelHangupRequest, *ari.StasisEnd, *ari.ChannelDestroyed:
			ct.shipperGone = e2e.EventTime(ev)
			ct.ok.Store(true)
			return
		}
	}
}

var callerSeq atomic.Int64

// sideRun is one run of a side: its calls' outcomes and latencies.
type sideRun struct {
	calls, completed int
	seconds          float64
	resume, dtmf     []float64
	errors           []string
}

func runSide(ctx context.Context, o options, s *e2e.Stack, carrier *e2e.Carrier, calls *sync.Map, did string, n, conc int) (*sideRun, error) {
	res := &sideRun{calls: n}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	interval := time.Duration(float64(time.Second) / o.rate)
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			from := fmt.Sprintf("+49171%07d", callerSeq.Add(1))
			ct := &callTimes{}
			calls.Store(from, ct)
			defer calls.Delete(from)
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			caller, err := carrier.Dial(cctx, from, did)
			if err == nil {
				err = caller.WaitHangup(cctx)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.errors = append(res.errors, err.Error())
			case !ct.ok.Load() || ct.agentStart.IsZero():
				res.errors = append(res.errors, fmt.Sprintf("%s: did not reach the agent after the shipper (shipper done %v, agent at %v)", from, ct.ok.Load(), ct.agentStart))
			default:
				res.completed++
				res.resume = append(res.resume, ms(ct.agentStart.Sub(ct.shipperGone)))
				if !ct.firstDigit.IsZero() && !ct.shipperUp.IsZero() {
					res.dtmf = append(res.dtmf, ms(ct.firstDigit.Sub(ct.shipperUp)))
				}
			}
		}()
	}
	wg.Wait()
	res.seconds = time.Since(start).Seconds()
	return res, nil
}

// sideTurn is one run of a comparison: a side and how many calls it makes.
type sideTurn struct {
	name  string
	calls int
}

// sideRuns is the order a comparison runs its sides in: ariflow, the
// dialplan, the dialplan, ariflow, each with half its calls, so that
// neither side is always the first on a stack that changes as it runs
// (Asterisk's caches, Redis, the machine's other load). A profile covers
// one run of ariflow's side: then each side runs once, ariflow first.
func sideRuns(o options) []sideTurn {
	if o.profile != "" || o.execTrace != "" || o.pbxPerf != "" || o.calls < 2 {
		return []sideTurn{{"ariflow", o.calls}, {"dialplan", o.calls}}
	}
	h := o.calls / 2
	return []sideTurn{{"ariflow", h}, {"dialplan", h}, {"dialplan", o.calls - h}, {"ariflow", o.calls - h}}
}

// sideAcc sums a side's runs.
type sideAcc struct {
	side
	run                        sideRun
	astCPU, afCPU, trips, cmds float64
	kinds                      map[string]float64
}

func (a *sideAcc) add(r *sideRun) {
	a.run.calls += r.calls
	a.run.completed += r.completed
	a.run.seconds += r.seconds
	a.run.resume = append(a.run.resume, r.resume...)
	a.run.dtmf = append(a.run.dtmf, r.dtmf...)
	a.Errors = append(a.Errors, r.errors...)
}

// finish is the side its runs make, with figures per call and per 1000
// calls.
func (a *sideAcc) finish() side {
	s, r := a.side, a.run
	s.Calls, s.Completed, s.Seconds = r.calls, r.completed, r.seconds
	if r.calls == 0 {
		return s
	}
	s.SetupRate = float64(r.calls) / r.seconds
	s.ResumeP50, s.ResumeP95, s.ResumeP99 = pct(r.resume, 50), pct(r.resume, 95), pct(r.resume, 99)
	s.DTMFP50, s.DTMFP99 = pct(r.dtmf, 50), pct(r.dtmf, 99)
	per := 1000 / float64(r.calls)
	s.AsteriskCPUPer1000 = a.astCPU * per
	if s.Name == "ariflow" {
		s.AriflowCPUPer1000 = a.afCPU * per
		s.RedisTripsPerCall = a.trips / float64(r.calls)
		s.RedisCmdsPerCall = a.cmds / float64(r.calls)
		s.ARIKinds = map[string]float64{}
		for k, n := range a.kinds {
			if d := n / float64(r.calls); d > 0 {
				s.ARIKinds[k] = d
				s.ARIPerCall += d
			}
		}
	}
	if len(s.Errors) > 10 {
		s.Errors = append(s.Errors[:10], fmt.Sprintf("... and %d more", len(s.Errors)-10))
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func (r *compareReport) print() {
	fmt.Printf("\n%d transfers per side, concurrency %d, %.0f calls/s offered, the shipper holding %.1f s\n\n", r.Calls, r.Concurrency, r.Rate, r.HoldS)
	fmt.Printf("%-9s %9s %8s %9s %9s %9s %9s %9s %12s %12s %9s\n", "side", "completed", "calls/s",
		"resume50", "resume95", "resume99", "dtmf50", "dtmf99", "ast cpu/1k", "af cpu/1k", "redis rt")
	for _, s := range r.Sides {
		fmt.Printf("%-9s %5d/%-4d %8.1f %7.1fms %7.1fms %7.1fms %7.1fms %7.1fms %11.1fs %11.1fs %9.1f\n",
			s.Name, s.Completed, s.Calls, s.SetupRate, s.ResumeP50, s.ResumeP95, s.ResumeP99,
			s.DTMFP50, s.DTMFP99, s.AsteriskCPUPer1000, s.AriflowCPUPer1000, s.RedisTripsPerCall)
		for _, e := range s.Errors {
			fmt.Printf("    error: %s\n", e)
		}
		if s.ARIPerCall > 0 {
			kinds := slices.Sorted(maps.Keys(s.ARIKinds))
			parts := make([]string, len(kinds))
			for i, k := range kinds {
				parts[i] = fmt.Sprintf("%s %.2f", k, s.ARIKinds[k])
			}
			fmt.Printf("    ARI requests per call %.1f: %s\n", s.ARIPerCall, strings.Join(parts, ", "))
		}
	}
	fmt.Printf("\nariflow peak RSS %.1f MB; after the run: %d channels, %d bridges, %d Redis keys, %+d goroutines\n",
		r.AriflowPeakRSS, r.Leaks.Channels, r.Leaks.Bridges, r.Leaks.RedisKeys, r.Leaks.Goroutines)
	fmt.Printf("tracing %v (%d spans exported), call records %v (%.0f sent)\n", r.Tracing, r.Spans, r.Records, r.RecordsSent)
}

// fetchProfile writes ariflow's pprof endpoint kind ("profile" or
// "trace") over secs seconds to path.
func fetchProfile(addr, kind string, secs int, path string) error {
	resp, err := adminGet(fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
