package e2e

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// TestARIStallReturnKeyExperiment looks for what lets a return key's '*'
// reach the far end after a stall of ariflow's ARI connection (the chaos
// soak's ari-stall; docs/chaos.md, "A return key's `*` heard by the far
// end"): return-key calls (the chaos flow's key block, "**"), one at a
// time, the caller bridged with the far end; ariflow's ARI proxy holds
// every byte for 5 s (Freeze), then lets them through (Thaw), as the soak
// does. The caller presses "**" during the freeze or not, then 0.3 s
// after the thaw and again 5 s later while the far end is there; a
// control arm presses only 5 s after the thaw. Each call logs what the
// far end received, what the PBX published of the caller's keys and of
// its bridge membership, every ARI request ariflow sent during it (the
// proxy's record), and the lines of ariflow's log and the PBX's log
// written during it. Opt-in (ARIFLOW_STALL_KEY_EXPERIMENT=1): it stops
// the suite's ariflow for one of its own, and adds a log channel to the
// PBX. ARIFLOW_STALL_KEY_CALLS sets the calls per arm (default 10).
func TestARIStallReturnKeyExperiment(t *testing.T) {
	calls := experiment(t, "ARIFLOW_STALL_KEY", "stops the suite's ariflow and freezes ARI for one of its own")
	dir := stack.Env["ARIFLOW_STACK_DIR"]
	pbxLog := filepath.Join(dir, "pbx", "log", "stallkey.log")
	if out, err := stackCLI("pbx", "logger add channel stallkey.log notice,warning,error,verbose(4),dtmf"); err != nil {
		t.Fatalf("adding the PBX's log channel: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = stackCLI("pbx", "logger remove channel stallkey.log") })

	// A process of the test's own, whose proxy records its requests.
	if err := af.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := af.start(context.Background(), filepath.Base(af.LogPath)); err != nil {
			t.Errorf("restarting the suite's ariflow: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: flowsDir, RecordRequests: true}, "ariflow-stallkey.log")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// ARIFLOW_STALL_KEY_BATCH: calls in flight at once, through one
	// freeze (default 1).
	batch := 1
	if v := os.Getenv("ARIFLOW_STALL_KEY_BATCH"); v != "" {
		if batch, err = strconv.Atoi(v); err != nil || batch < 1 {
			t.Fatalf("ARIFLOW_STALL_KEY_BATCH=%q: want a positive number", v)
		}
	}
	const freeze = 5 * time.Second
	arms := []stallArm{
		// The soak's case: the first '*' reaches ariflow, the second is
		// held in the freeze.
		{name: "** across the freeze's start, ** after the thaw", presses: []time.Duration{-450 * time.Millisecond, freeze + 300*time.Millisecond, freeze + 5300*time.Millisecond}},
		{name: "** in the freeze, ** after the thaw", presses: []time.Duration{500 * time.Millisecond, freeze + 300*time.Millisecond, freeze + 5300*time.Millisecond}},
		{name: "** late in the freeze, ** after the thaw", presses: []time.Duration{4 * time.Second, freeze + 300*time.Millisecond, freeze + 5300*time.Millisecond}},
		{name: "** after the thaw only", presses: []time.Duration{freeze + 300*time.Millisecond, freeze + 5300*time.Millisecond}},
		{name: "** 5 s after the thaw (control)", presses: []time.Duration{freeze + 5000*time.Millisecond, freeze + 10000*time.Millisecond}},
		// The soak's order at the thaw: the old session ends (the app
		// inactive a moment), then the new websocket registers the app.
		{name: "** after the thaw, the new websocket 0.2 s after it", presses: []time.Duration{freeze + 300*time.Millisecond, freeze + 5300*time.Millisecond}, hold: 200 * time.Millisecond},
		{name: "** in the freeze and after the thaw, the new websocket 0.2 s after it", presses: []time.Duration{500 * time.Millisecond, freeze + 300*time.Millisecond, freeze + 5300*time.Millisecond}, hold: 200 * time.Millisecond},
		// Not a stall: a lone '*' is passed on after the hold; when it
		// reaches the far end.
		{name: "a lone * without a freeze", presses: []time.Duration{0}, keys: "*", noFreeze: true},
	}
	if s := os.Getenv("ARIFLOW_STALL_KEY_ARMS"); s != "" {
		arms = slices.DeleteFunc(arms, func(a stallArm) bool { return !strings.Contains(a.name, s) })
	}
	for _, arm := range arms {
		arm.freeze = freeze
		t.Run(arm.name, func(t *testing.T) {
			var heard, byPress, n int
			for b := 0; n < calls; b++ {
				k := min(batch, calls-n)
				bt := stallBatch(t, p, arm, k, pbxLog)
				leaked := false
				for _, res := range bt.calls {
					n++
					if strings.Contains(digitString(res.far), "*") {
						heard++
						leaked = true
					}
					if res.resumedBy >= 0 {
						byPress++
					}
					t.Logf("call %d (%s): far end: %s; PBX published for the caller: %s; caller's bridge moves: %s; resumed: %s",
						n, res.from, relDigits(res.far, bt.frozen), relDigits(res.pbx, bt.frozen),
						strings.Join(res.moves, ", "), res.resumedText())
				}
				// The details of the first batch of an arm, and of every
				// batch where a far end heard a key.
				if b > 0 && !leaked {
					continue
				}
				t.Logf("batch %d: frozen at %s", b+1, bt.frozen.Format("15:04:05.000"))
				for _, r := range bt.reqs {
					t.Logf("  request %s %+dms %s %s", r.At.Format("15:04:05.000"), r.At.Sub(bt.frozen).Milliseconds(), r.Method, r.Path)
				}
				for _, l := range bt.pbxLog {
					t.Logf("  pbx: %s", l)
				}
				for _, l := range bt.afLog {
					t.Logf("  ariflow: %s", l)
				}
			}
			t.Logf("%s: %d calls (%d at a time); far end heard a '*' in %d; resumed by a press in %d", arm.name, calls, batch, heard, byPress)
		})
	}
}

type stallArm struct {
	name    string
	freeze  time.Duration
	presses []time.Duration // since the freeze began (before it: negative): "**" each
	// hold: new connections are held from the freeze until this long
	// after the thaw.
	hold     time.Duration
	keys     string // pressed each time ("**" if empty)
	noFreeze bool   // the proxy is left alone
}

type stallResult struct {
	from      string
	far       []Digit // the far end's digits after the flow's "12"
	pbx       []Digit // the PBX's ChannelDtmfReceived for the caller
	moves     []string
	resumedBy int // the press after which ariflow hung the far end up (-1: none)
	resumedAt time.Duration
}

func (r stallResult) resumedText() string {
	if r.resumedBy < 0 {
		return "no (the test hung the far end up)"
	}
	return fmt.Sprintf("after press %d, far end gone at %+dms", r.resumedBy+1, r.resumedAt.Milliseconds())
}

// stallBatchResult is a batch of calls through one freeze.
type stallBatchResult struct {
	frozen time.Time
	calls  []stallResult
	reqs   []ProxiedRequest
	afLog  []string
	pbxLog []string
}

// stallBatch places k return-key calls at once through p, lets the
// flow's digits reach their far ends, freezes p's ARI proxy for
// arm.freeze, and has each caller press "**" at arm's times while its far
// end is there.
func stallBatch(t *testing.T, p *Ariflow, arm stallArm, k int, pbxLog string) stallBatchResult {
	t.Helper()
	ctx := callTest(t, 120*time.Second)
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	bt := stallBatchResult{calls: make([]stallResult, k)}
	afStart, pbxStart := fileSize(p.LogPath), fileSize(pbxLog)
	began := time.Now()
	ready := make(chan error, k)
	frozen := make(chan time.Time)
	done := make(chan error, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done <- stallCall(ctx, arm, &bt.calls[i], ready, frozen)
		}()
	}
	for range k {
		if err := <-ready; err != nil {
			close(frozen)
			wg.Wait()
			t.Fatal(err)
		}
	}
	time.Sleep(700 * time.Millisecond) // a person answers, talks
	// Presses before the freeze (negative times) need it a moment ahead.
	lead := 50 * time.Millisecond
	for _, d := range arm.presses {
		lead = max(lead, 50*time.Millisecond-d)
	}
	bt.frozen = time.Now().Add(lead)
	for range k {
		frozen <- bt.frozen
	}
	time.Sleep(time.Until(bt.frozen))
	if !arm.noFreeze {
		p.Proxy.Freeze()
		if arm.hold > 0 {
			p.Proxy.Hold()
		}
		time.Sleep(arm.freeze)
		p.Proxy.Thaw()
		if arm.hold > 0 {
			time.Sleep(arm.hold)
			p.Proxy.Release()
		}
	}
	wg.Wait()
	close(done)
	for err := range done {
		if err != nil {
			t.Error(err)
		}
	}
	ended := time.Now()
	for _, q := range p.Proxy.Requests() {
		if !q.At.Before(began) && q.At.Before(ended) && !strings.HasSuffix(q.Path, "/asterisk/ping") {
			bt.reqs = append(bt.reqs, q)
		}
	}
	bt.afLog = linesSince(p.LogPath, afStart, func(l string) bool { return !strings.Contains(l, "level=debug msg=\"ari request") })
	bt.pbxLog = linesSince(pbxLog, pbxStart, func(l string) bool {
		return !strings.Contains(l, "pbx.c: Executing") && !strings.Contains(l, "res_rtp")
	})
	return bt
}

// stallCall is one call of a batch: it says on ready when its far end has
// the flow's digits, takes the freeze's start from frozen (closed: the
// batch failed), and fills res.
func stallCall(ctx context.Context, arm stallArm, res *stallResult, ready chan<- error, frozen <-chan time.Time) error {
	from := nextCaller()
	res.from, res.resumedBy = from, -1
	failed := func(err error) error {
		ready <- err
		return nil
	}
	// The caller's channel on the PBX is the one with the caller's
	// number that is not ours ("ariflow-" legs).
	isCaller := func(ch ari.ChannelData) bool {
		return ch.Caller.Number == from && !strings.HasPrefix(ch.ID, "ariflow-")
	}
	pbxKeys := observer.hub.subscribe(func(ev ari.Event) bool {
		e, ok := ev.(*ari.ChannelDtmfReceived)
		return ok && isCaller(e.Channel)
	})
	defer observer.hub.unsubscribe(pbxKeys)
	moves := observer.hub.subscribe(func(ev ari.Event) bool {
		switch e := ev.(type) {
		case *ari.ChannelEnteredBridge:
			return isCaller(e.Channel)
		case *ari.ChannelLeftBridge:
			return isCaller(e.Channel)
		}
		return false
	})
	defer observer.hub.unsubscribe(moves)
	farc := carrier.ExpectFrom(chaosFarKey, from)
	agent := carrier.ExpectFrom(agentOK, from)
	caller, err := carrier.Dial(ctx, from, chaosKeyDID)
	if err != nil {
		return failed(err)
	}
	var r *Remote
	select {
	case r = <-farc:
	case <-ctx.Done():
		return failed(fmt.Errorf("%s: no call to the far end: %w", from, ctx.Err()))
	}
	if err := r.Answer(); err != nil {
		return failed(err)
	}
	if _, err := r.Digits(shortCtx(ctx, 10*time.Second), 2); err != nil {
		return failed(fmt.Errorf("%s: far end, the flow's 2 digits: %w", from, err))
	}
	ready <- nil
	at, ok := <-frozen
	if !ok {
		return nil
	}
	farGone := make(chan struct{})
	pressed := make(chan error, 1)
	go func() {
		for i, d := range arm.presses {
			select {
			case <-time.After(time.Until(at.Add(d))):
			case <-farGone:
				pressed <- nil
				return
			}
			keys := cmp.Or(arm.keys, "**")
			if err := caller.SendDTMF(keys); err != nil {
				pressed <- fmt.Errorf("%s: caller presses %s (%d): %w", from, keys, i+1, err)
				return
			}
		}
		pressed <- nil
	}()
	// The far end's digits until ariflow hangs it up, or 6 s after the
	// last press.
	last := at.Add(arm.presses[len(arm.presses)-1])
	gone := false
	for !gone {
		ev, err := r.Event(shortCtx(ctx, time.Until(last.Add(6*time.Second))))
		if err != nil {
			break
		}
		switch e := ev.(type) {
		case *ari.ChannelDtmfReceived:
			res.far = append(res.far, Digit{Digit: e.Digit, At: EventTime(e), Duration: time.Duration(e.DurationMs) * time.Millisecond})
		case *ari.StasisEnd, *ari.ChannelDestroyed:
			gone = true
			res.resumedAt = EventTime(ev).Sub(at)
			for i, d := range arm.presses {
				if res.resumedAt > d {
					res.resumedBy = i
				}
			}
		}
	}
	close(farGone)
	if err := <-pressed; err != nil {
		return err
	}
	if !gone {
		if err := r.Hangup(); err != nil {
			return err
		}
	}
	select {
	case a := <-agent:
		a.AnswerAndHangup()
	case <-ctx.Done():
		return fmt.Errorf("%s: no call to the agent after Success: %w", from, ctx.Err())
	}
	if err := caller.WaitHangup(ctx); err != nil {
		return err
	}
	for {
		ev, err := pbxKeys.next(shortCtx(ctx, 200*time.Millisecond))
		if err != nil {
			break
		}
		e := ev.(*ari.ChannelDtmfReceived)
		res.pbx = append(res.pbx, Digit{Digit: e.Digit, At: EventTime(e), Duration: time.Duration(e.DurationMs) * time.Millisecond})
	}
	for {
		ev, err := moves.next(shortCtx(ctx, 100*time.Millisecond))
		if err != nil {
			break
		}
		var bridge string
		switch e := ev.(type) {
		case *ari.ChannelEnteredBridge:
			bridge = e.Bridge.ID
		case *ari.ChannelLeftBridge:
			bridge = e.Bridge.ID
		}
		res.moves = append(res.moves, fmt.Sprintf("%s %s %+dms", ev.GetType(), bridge, EventTime(ev).Sub(at).Milliseconds()))
	}
	return nil
}
