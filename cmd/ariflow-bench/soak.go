package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ariflow/ariflow/e2e"
)

const (
	soakDID      = "+4930555071" // e2e/testdata/bench/soak.yaml
	soakBadDID   = "+4930555072" // the same flow with an invalid number
	soakShipper  = "+4930123460"
	soakSuccess  = "+4930111000"
	soakFailed   = "+4930111001"
	soakTimeout  = "+4930111002"
	soakError    = "+4930111003"
	soakDTMFSent = 3 // "1,2,3"
)

// fate is one kind of call in the soak and how to check it.
type fate struct {
	name  string
	did   string
	agent string // branch target expected, "" when the caller leaves first
	play  func(ctx context.Context, caller *e2e.Caller, ship *e2e.Remote) error
}

// hangupSeen waits for the far end to be hung up after the caller left and
// records how long that took. Its speed is a figure in the report; only a
// far end that stays up past the limit is a failure.
func hangupSeen(ctx context.Context, r *e2e.Remote, limit time.Duration) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if _, err := r.WaitHangup(ctx); err != nil {
		return fmt.Errorf("far end still up %v after the caller hung up: %w", limit, err)
	}
	propMu.Lock()
	propagation = append(propagation, ms(time.Since(start)))
	propMu.Unlock()
	return nil
}

var (
	propMu      sync.Mutex
	propagation []float64 // ms from the caller's hangup to the far end's
)

var fates = []fate{
	{"success", soakDID, soakSuccess, func(ctx context.Context, _ *e2e.Caller, r *e2e.Remote) error {
		_ = r.Answer()
		if d, err := r.Digits(ctx, soakDTMFSent); err != nil || d != "123" {
			return fmt.Errorf("digits %q: %v", d, err)
		}
		return r.Hangup()
	}},
	{"busy", soakDID, soakFailed, func(_ context.Context, _ *e2e.Caller, r *e2e.Remote) error { return r.Reject("busy") }},
	{"no answer", soakDID, soakTimeout, func(_ context.Context, _ *e2e.Caller, r *e2e.Remote) error { return r.Ring() }},
	{"invalid number", soakBadDID, soakError, nil},
	{"caller hangs up while ringing", soakDID, "", func(ctx context.Context, c *e2e.Caller, r *e2e.Remote) error {
		_ = r.Ring()
		_ = c.Hangup()
		return hangupSeen(ctx, r, 5*time.Second)
	}},
	{"caller hangs up during DTMF", soakDID, "", func(ctx context.Context, c *e2e.Caller, r *e2e.Remote) error {
		_ = r.Answer()
		if _, err := r.Digits(ctx, 1); err != nil {
			return err
		}
		_ = c.Hangup()
		return hangupSeen(ctx, r, 5*time.Second)
	}},
	{"caller hangs up while bridged", soakDID, "", func(ctx context.Context, c *e2e.Caller, r *e2e.Remote) error {
		_ = r.Answer()
		if _, err := r.Digits(ctx, soakDTMFSent); err != nil {
			return err
		}
		_ = c.Hangup()
		return hangupSeen(ctx, r, 5*time.Second)
	}},
	{"far end hangs up during DTMF", soakDID, soakSuccess, func(ctx context.Context, _ *e2e.Caller, r *e2e.Remote) error {
		_ = r.Answer()
		if _, err := r.Digits(ctx, 1); err != nil {
			return err
		}
		return r.Hangup()
	}},
}

type soakReport struct {
	Seconds       float64          `json:"seconds"`
	Concurrency   int              `json:"concurrency"`
	Calls         int64            `json:"calls"`
	ByFate        map[string]int64 `json:"calls_by_fate"`
	WrongBranches int64            `json:"wrong_branches"`
	HangupP50     float64          `json:"caller_hangup_to_far_end_p50_ms"`
	HangupP99     float64          `json:"caller_hangup_to_far_end_p99_ms"`
	HangupMax     float64          `json:"caller_hangup_to_far_end_max_ms"`
	Unexpected    []string         `json:"unexpected_calls,omitempty"`
	Failures      []string         `json:"failures,omitempty"`
	Leaks         leaks            `json:"leaks_after_run"`
	AriflowPeakMB float64          `json:"ariflow_peak_rss_mb"`
}

func soak(ctx context.Context, o options, s *e2e.Stack, af *e2e.Ariflow, carrier *e2e.Carrier) (*soakReport, error) {
	rep := &soakReport{Concurrency: o.concurrency, ByFate: map[string]int64{}}
	goroutinesBefore := callGoroutines(af.HTTPAddr)
	deadline := time.Now().Add(o.soak)
	var mu sync.Mutex
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := n.Add(1)
				f := fates[int(i)%len(fates)]
				err := soakCall(ctx, carrier, f)
				mu.Lock()
				rep.ByFate[f.name]++
				if err != nil {
					rep.WrongBranches++
					if len(rep.Failures) < 20 {
						rep.Failures = append(rep.Failures, f.name+": "+err.Error())
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	propMu.Lock()
	rep.HangupP50, rep.HangupP99, rep.HangupMax = pct(propagation, 50), pct(propagation, 99), pct(propagation, 100)
	propMu.Unlock()
	rep.Calls = n.Load()
	fateOfMu.Lock()
	for _, u := range carrier.Unexpected() {
		_, from, _ := strings.Cut(u, " from ")
		rep.Unexpected = append(rep.Unexpected, u+" ("+fateOf[from]+")")
	}
	fateOfMu.Unlock()
	rep.WrongBranches += int64(len(rep.Unexpected))
	if err := s.WaitClean(ctx, 20*time.Second); err != nil {
		rep.Failures = append(rep.Failures, "after the soak: "+err.Error())
	}
	ch, br, keys, err := s.Leftovers(ctx)
	if err != nil {
		return rep, err
	}
	rep.Leaks = leaks{Channels: len(ch), Bridges: len(br), RedisKeys: len(keys),
		Goroutines: callGoroutines(af.HTTPAddr) - goroutinesBefore}
	rep.AriflowPeakMB = peakRSSMB(af.Pid())
	return rep, nil
}

var (
	soakSeq  atomic.Int64
	fateOfMu sync.Mutex
	fateOf   = map[string]string{} // caller number -> fate, for reports
)

// soakCall runs one call of a fate and says whether it went as it should.
func soakCall(ctx context.Context, carrier *e2e.Carrier, f fate) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	from := fmt.Sprintf("+49172%07d", soakSeq.Add(1))
	fateOfMu.Lock()
	fateOf[from] = f.name
	fateOfMu.Unlock()
	ship := carrier.ExpectFrom(soakShipper, from)
	var agent <-chan *e2e.Remote
	if f.agent != "" {
		agent = carrier.ExpectFrom(f.agent, from)
	}
	caller, err := carrier.Dial(ctx, from, f.did)
	if err != nil {
		return err
	}
	if f.play != nil {
		select {
		case r := <-ship:
			if err := f.play(ctx, caller, r); err != nil {
				_ = caller.Hangup()
				return err
			}
		case <-ctx.Done():
			_ = caller.Hangup()
			return errors.New("the shipper was never called")
		}
	} else {
		defer carrier.Forget(soakShipper+"|"+from, ship)
	}
	if agent != nil {
		select {
		case a := <-agent:
			a.AnswerAndHangup()
		case <-ctx.Done():
			_ = caller.Hangup()
			return fmt.Errorf("did not reach %s", f.agent)
		}
	}
	if err := caller.WaitHangup(ctx); err != nil {
		return err
	}
	if f.play == nil {
		select {
		case r := <-ship:
			_ = r.Hangup()
			return errors.New("the shipper was dialled for an invalid number")
		default:
		}
	}
	return nil
}

func (r *soakReport) print() {
	fmt.Printf("\nsoak: %d calls in %.0f s at concurrency %d\n", r.Calls, r.Seconds, r.Concurrency)
	for _, f := range fates {
		fmt.Printf("  %-32s %6d\n", f.name, r.ByFate[f.name])
	}
	fmt.Printf("caller hangup -> far end hung up: p50 %.0f ms, p99 %.0f ms, max %.0f ms (seen by the carrier's ARI client)\n", r.HangupP50, r.HangupP99, r.HangupMax)
	fmt.Printf("wrong branches: %d; after the run: %d channels, %d bridges, %d Redis keys, %+d goroutines; ariflow peak RSS %.1f MB\n",
		r.WrongBranches, r.Leaks.Channels, r.Leaks.Bridges, r.Leaks.RedisKeys, r.Leaks.Goroutines, r.AriflowPeakMB)
	for _, f := range r.Failures {
		fmt.Println("  failure:", f)
	}
	for i, u := range r.Unexpected {
		if i == 20 {
			fmt.Printf("  ... and %d more unexpected calls\n", len(r.Unexpected)-20)
			break
		}
		fmt.Println("  unexpected call:", u)
	}
}
