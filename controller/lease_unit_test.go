package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

const twoPrompts = `
name: prompts
version: "1"
entry: ["prompts"]
start: one
blocks:
  one: {type: PlayPrompt, prompts: ["sound:one"], branches: {Next: two}}
  two: {type: PlayPrompt, prompts: ["sound:two"], branches: {Next: bye, Error: error}}
  error: {type: PlayPrompt, prompts: ["sound:br-error"], branches: {Next: bye}}
  bye: {type: Disconnect}
`

// The memStore fences as RedisStore does.
func TestMemStoreFencing(t *testing.T) {
	t.Parallel()
	s := newMemStore()
	ctx := context.Background()
	campaign := func(owner string) int64 {
		t.Helper()
		e, err := s.Campaign(ctx, owner, time.Second)
		if err != nil {
			t.Fatalf("campaign for %s: %v", owner, err)
		}
		return e
	}
	e1 := campaign("a")
	if e := campaign("b"); e != 0 || e1 == 0 {
		t.Fatalf("campaign: a %d, b %d", e1, e)
	}
	if e := campaign("a"); e != e1 {
		t.Errorf("renewal gave epoch %d, want %d", e, e1)
	}
	if err := s.Save(ctx, &record.Call{CallID: "x", Owner: "a", Epoch: e1}); err != nil {
		t.Error(err)
	}
	if err := s.Save(ctx, &record.Call{CallID: "x", Owner: "b", Epoch: e1}); err == nil {
		t.Error("save by a non-holder accepted")
	}
	s.handTo("b", time.Second)
	if err := s.Save(ctx, &record.Call{CallID: "x", Owner: "a", Epoch: e1}); err == nil {
		t.Error("save at an old epoch accepted")
	}
	if err := s.Delete(ctx, "x", record.Fence{Owner: "a", Epoch: e1}); err == nil {
		t.Error("delete at an old epoch accepted")
	}
	if err := s.Resign(ctx, "b", s.epoch); err != nil {
		t.Fatal(err)
	}
	if e := campaign("a"); e <= e1+1 {
		t.Errorf("new term epoch %d, want > %d", e, e1+1)
	}
}

// The lease handed to another process mid-call: this one sends no REST
// request and writes nothing more; the record stays for the new holder.
func TestLeaseLostMidCall(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts})
	h.caller("c1", "prompts")
	pb := h.wantPlayed("c1", "sound:one")
	before := h.load("c1")
	saves, _, deletes := h.store.counts()
	h.store.handTo("other", time.Minute)
	reqs := len(h.fake.Requests())
	h.fake.FinishPlayback(pb) // the call would play "two" next
	eventually(t, "no longer active", func() bool { return !h.app.Active() && !h.app.Ready() })
	h.ended("c1")
	h.fake.DTMF("c1", "1")
	time.Sleep(200 * time.Millisecond) // nothing may happen: nothing to await
	for _, r := range h.fake.Requests()[reqs:] {
		if r.Path != "/asterisk/ping" { // a standby's sign-of-life check
			t.Errorf("request after the lease was lost: %s %s", r.Method, r.Path)
		}
	}
	if s, _, d := h.store.counts(); s != saves || d != deletes {
		t.Errorf("store writes after the lease was lost: saves %d→%d, deletes %d→%d", saves, s, deletes, d)
	}
	after, err := h.store.Load(t.Context(), "c1")
	if err != nil || after.Block != before.Block || after.Epoch != before.Epoch {
		t.Errorf("record changed: %+v → %+v (%v)", before, after, err)
	}
	if h.app.Role() != "standby" {
		t.Errorf("role %s", h.app.Role())
	}
}

// A standby does not connect the websocket; it takes over when the
// holder's lease expires, and adopts its calls.
func TestStandbyTakesOverOnExpiry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("")
	h.store.put(adoptRecord(record.PhaseFlow, "ok", "", 0))
	h.store.handTo("other", 400*time.Millisecond)
	start := time.Now()
	h.start()
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Errorf("connected after %v, while another held the lease", d)
	}
	if !h.app.Ready() || h.app.Role() != "active" || h.fake.Connections() != 1 {
		t.Errorf("ready %v role %s connections %d", h.app.Ready(), h.app.Role(), h.fake.Connections())
	}
	pb := h.wantPlayed("c1", mSuccess)
	h.fake.FinishPlayback(pb)
	h.ended("c1")
}

// ApplicationReplaced (another connection took the app): the app stops
// acting at once and gives the lease up.
func TestApplicationReplaced(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"event", "second websocket"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			h := run(t, []string{twoPrompts})
			h.caller("c1", "prompts")
			pb := h.wantPlayed("c1", "sound:one")
			if how == "event" {
				h.fake.Emit(map[string]any{"type": "ApplicationReplaced", "application": aritest.App})
			} else {
				cl := ari.New(ari.Options{URL: h.fake.URL(), User: aritest.User, Password: aritest.Password, App: aritest.App})
				ws, err := cl.Events(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ws.Close() })
			}
			eventually(t, "not ready", func() bool { return !h.app.Ready() })
			h.ended("c1")
			reqs := len(h.fake.Requests())
			h.fake.FinishPlayback(pb)
			h.caller("c2", "prompts")
			time.Sleep(200 * time.Millisecond) // nothing may happen: nothing to await
			if got := h.fake.Requests(); len(got) != reqs {
				t.Errorf("requests after ApplicationReplaced: %v", got[reqs:])
			}
			if !h.store.has("c1") {
				t.Error("record of the call left in Stasis deleted")
			}
		})
	}
}

// On ApplicationReplaced the lease is given up at once (Resign), not left
// to expire: a standby of this configuration can take over without the
// TTL's wait.
func TestApplicationReplacedResignsLease(t *testing.T) {
	t.Parallel()
	// A lease that cannot expire within the test: only a resignation
	// frees it.
	h := run(t, []string{twoPrompts}, func(c *Config) { c.LeaseTTL = time.Minute })
	h.fake.Emit(map[string]any{"type": "ApplicationReplaced", "application": aritest.App})
	eventually(t, "not ready", func() bool { return !h.app.Ready() })
	eventually(t, "the lease resigned", func() bool {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		return h.store.resigns == 1
	})
}

// Saving fails before a block: that block is not run and its Error branch
// is taken.
func TestSaveFailsBeforeBlock(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts})
	h.caller("c1", "prompts")
	pb := h.wantPlayed("c1", "sound:one")
	h.store.mu.Lock()
	h.store.failSaves = 1
	h.store.mu.Unlock()
	h.fake.FinishPlayback(pb)
	pb = h.wantPlayed("c1", mError)
	h.fake.FinishPlayback(pb)
	h.ended("c1")
	for _, m := range h.medias("c1") {
		if m == "sound:two" {
			t.Error("the block whose save failed ran")
		}
	}
}

// Saving fails at the very first write (Redis down as the call came in):
// the fallback, nothing played.
func TestSaveFailsAtFirstSave(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts}, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
	h.store.mu.Lock()
	h.store.failAll = errRedisDown
	h.store.mu.Unlock()
	h.caller("c1", "prompts")
	r := h.req("POST", "/channels/c1/continue")
	if r.Query.Get("context") != "fallback" {
		t.Errorf("continue %v", r.Query)
	}
	h.ended("c1")
	if m := h.medias("c1"); len(m) != 0 {
		t.Errorf("played %v", m)
	}
}

// Saving the dialing phase fails: the leg made is hung up undialled, its
// bridge destroyed, and the block takes its Error branch.
func TestSaveFailsBeforeDialling(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.store.mu.Lock()
	h.store.passSaves = 1 // the call's first record
	h.store.failSaves = 1
	h.store.mu.Unlock()
	h.caller("c1", "xfer")
	h.branchTaken("c1", mError, transfer.OutcomeError)
	for _, r := range h.fake.Requests() {
		if strings.HasSuffix(r.Path, "/dial") {
			t.Errorf("dialled without a saved record: %s %s", r.Method, r.Path)
		}
	}
	h.ended("c1")
	h.clean("c1")
}

// The dialing state's write lands but its answer is lost (Redis
// restarting, a connection cut): the call writes it again and dials, as
// the record says. Taken as failed at once, the block took its Error
// branch while the record said "dialing", and a process taking over
// followed the record to another branch (chaos run Q).
func TestSaveAnswerLostBeforeDialling(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows, func(c *Config) { c.SavePatience = 2 * time.Second })
	h.store.mu.Lock()
	h.store.passSaves = 1 // the call's first record
	h.store.lostAnswers = 1
	h.store.mu.Unlock()
	h.caller("c1", "xfer")
	leg, _ := h.leg() // dialled
	h.store.mu.Lock()
	lost := h.store.lostAnswers
	h.store.mu.Unlock()
	if lost != 0 {
		t.Fatalf("the lost answer was not met")
	}
	if rec := h.load("c1"); rec.Phase != record.PhaseDialing || rec.Outbound != leg {
		t.Errorf("record phase %s, leg %s; want dialing, %s", rec.Phase, rec.Outbound, leg)
	}
	h.fake.Hangup("c1", 16)
	h.ended("c1")
	h.clean("c1")
}

// Redis gives no answer for longer than SavePatience: the block takes its
// Error branch, nothing dialled, as before.
func TestSaveUnansweredPastPatience(t *testing.T) {
	t.Parallel()
	// Room for one write more (100 ms on), not two (300 ms on).
	h := run(t, xferFlows, func(c *Config) { c.SavePatience = 150 * time.Millisecond })
	h.store.mu.Lock()
	h.store.passSaves = 1 // the call's first record
	h.store.failSaves = 2
	h.store.mu.Unlock()
	h.caller("c1", "xfer")
	h.branchTaken("c1", mError, transfer.OutcomeError)
	h.store.mu.Lock()
	if h.store.refused != 2 {
		t.Errorf("%d saves refused; want the dialing state written twice", h.store.refused)
	}
	h.store.mu.Unlock()
	for _, r := range h.fake.Requests() {
		if strings.HasSuffix(r.Path, "/dial") {
			t.Errorf("dialled without a saved record: %s %s", r.Method, r.Path)
		}
	}
	h.ended("c1")
	h.clean("c1")
}

// A call whose event queue overflows is ended (fallback); another call is
// not affected.
func TestEventQueueOverflow(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts}, func(c *Config) { c.EventQueue = 4 })
	h.caller("c2", "prompts")
	pb2 := h.wantPlayed("c2", "sound:one")
	release := make(chan struct{})
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == "POST" && strings.HasPrefix(r.Path, "/channels/c1/play") {
			<-release // the call is busy in a request while its events pile up
		}
		return 0, "", 0, false
	})
	h.caller("c1", "prompts")
	h.req("POST", "/channels/c1/play")
	for range 20 {
		h.fake.DTMF("c1", "1")
	}
	eventually(t, "c1's queue overflowed", func() bool { return testutil.ToFloat64(h.app.metrics.DroppedEvents) == 1 })
	h.fake.Intercept(nil)
	close(release)
	sorry := h.wantPlayed("c1", "sound:sorry-youre-having-problems")
	h.fake.FinishPlayback(sorry)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	// c2 goes on.
	h.fake.FinishPlayback(pb2)
	pb2 = h.wantPlayed("c2", "sound:two")
	h.fake.FinishPlayback(pb2)
	h.req("DELETE", "/channels/c2")
	h.ended("c2")
}

// While draining, a new caller goes to the fallback.
func TestDrainingSendsNewCallsToFallback(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts}, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
	h.app.Drain()
	h.caller("c1", "prompts")
	h.req("POST", "/channels/c1/continue")
	if h.app.ActiveCalls() != 0 {
		t.Error("call started while draining")
	}
}

// The websocket drops; the caller hangs up and a prompt ends meanwhile
// (events lost). After the reconnect, the reconcile finds out: the call
// whose caller left ends, the one whose prompt ended goes on.
func TestWebsocketDropReconcile(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts})
	h.caller("c1", "prompts")
	h.caller("c2", "prompts")
	h.wantPlayed("c1", "sound:one")
	_, pb2 := h.played("c2")
	h.fake.DropWebsocket()
	h.fake.Hangup("c1", 16)
	h.fake.FinishPlayback(pb2)
	eventually(t, "reconnected", func() bool { return h.fake.Connections() == 2 })
	h.ended("c1")
	eventually(t, "c1's record deleted", func() bool { return !h.store.has("c1") })
	pb2 = h.wantPlayed("c2", "sound:two")
	h.fake.FinishPlayback(pb2)
	h.ended("c2")
}

// Check reports the version, and a clear error for a bad password.
func TestCheck(t *testing.T) {
	t.Parallel()
	f := aritest.New(t)
	info, err := Check(context.Background(), f.URL(), aritest.User, aritest.Password)
	if err != nil || info.Version != aritest.Version {
		t.Errorf("Check: %+v %v", info, err)
	}
	if _, err := Check(context.Background(), f.URL(), aritest.User, "wrong"); err == nil {
		t.Error("Check with a wrong password passed")
	}
}

// A flow whose Error branches lead back (a → b → a) with the record
// unwritable block after block: without a bound it would loop without
// waiting; after maxSaveFailures blocks the caller goes to the fallback.
func TestSaveFailingInALoopEndsInTheFallback(t *testing.T) {
	t.Parallel()
	const loop = `
name: loop
version: "1"
entry: ["loop"]
start: a
blocks:
  a: {type: PlayPrompt, prompts: ["sound:a"], branches: {Next: b, Error: b}}
  b: {type: PlayPrompt, prompts: ["sound:b"], branches: {Next: a, Error: a}}
`
	h := run(t, []string{loop}, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
	h.caller("c1", "loop")
	pb := h.wantPlayed("c1", "sound:a")
	h.store.mu.Lock()
	h.store.failAll = errRedisDown
	h.store.mu.Unlock()
	h.fake.FinishPlayback(pb)
	r := h.req("POST", "/channels/c1/continue")
	if r.Query.Get("context") != "fallback" {
		t.Errorf("continue %v", r.Query)
	}
	if m := h.medias("c1"); len(m) != 1 {
		t.Errorf("prompts played %v; the blocks whose save failed must not run", m)
	}
}

// A renewal slowed by Redis latency lets the lease lapse here for a
// moment, though no other process took it. Calls that want to act then
// wait for the renewal under way and go on once it is back: none is
// abandoned, and the events that arrive meanwhile are not dropped. (With
// the lease taken for lost at the first lapse, every caller in a prompt
// was left in Stasis, and nobody took the calls over.)
func TestLeaseLapseAbandonsNoCall(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts}, func(c *Config) { c.LeaseTTL = 300 * time.Millisecond })
	ids := []string{"c1", "c2", "c3"}
	pbs := map[string]string{}
	for _, id := range ids {
		h.caller(id, "prompts")
		pbs[id] = h.wantPlayed(id, "sound:one")
	}
	// Renewals every 75 ms, each valid 262 ms from when it was sent:
	// each now lands after the last has lapsed here, but within the
	// store's lease.
	epoch, _ := h.app.lease.fence()
	h.store.setLatency(225 * time.Millisecond)
	eventually(t, "the lease lapses here", func() bool { return !h.app.lease.valid() })
	for _, id := range ids {
		h.fake.FinishPlayback(pbs[id]) // while it has lapsed
	}
	for _, id := range ids {
		pbs[id] = h.wantPlayed(id, "sound:two")
	}
	eventually(t, "the lapse counted", func() bool { return testutil.ToFloat64(h.app.metrics.LeaseLapses) >= 1 })
	h.store.setLatency(0)
	// A renewal sent before the latency went may still be slow: the
	// lease is valid again once it is back, under the same epoch (giving
	// it up would have begun a new term under a new one).
	eventually(t, "the lease valid again", h.app.Active)
	if now, _ := h.app.lease.fence(); now != epoch {
		// With the cores busy a renewal can land past the store's lease
		// too: it ran out there and was taken again (next test). Only a
		// new epoch without that is a lease given up for nothing.
		if testutil.ToFloat64(h.app.metrics.LeaseFailures) == 0 {
			t.Errorf("epoch %d, was %d: the process gave up a lease nobody else took", now, epoch)
		} else {
			t.Logf("epoch %d, was %d: a renewal landed past the store's lease (busy machine); taken again", now, epoch)
		}
	}
	for _, id := range ids {
		h.fake.FinishPlayback(pbs[id])
		h.ended(id)
	}
}

// A process that does not renew for a whole lease lifetime (Redis slower
// than the lease, or the process starved of CPU) finds the lease run out
// in the store, and takes it again.
//   - Taken again with the very next epoch, nobody else held it: the
//     calls go on where they are, no prompt restarts.
//   - Another process held it meanwhile: what this one knows of its calls
//     may be stale, so a new term takes them over from the store again.
//
// No call is left in either case.
func TestLeaseRanOutTakenAgain(t *testing.T) {
	t.Parallel()
	for _, other := range []bool{false, true} {
		name := "nobody else held it"
		if other {
			name = "another process held it"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := run(t, []string{twoPrompts}, func(c *Config) { c.LeaseTTL = 300 * time.Millisecond })
			h.caller("c1", "prompts")
			pb := h.wantPlayed("c1", "sound:one")
			takeovers := testutil.ToFloat64(h.app.metrics.Takeovers)
			h.store.setLatency(500 * time.Millisecond) // longer than the lease
			if other {
				// A standby takes the lease as it runs out in the store,
				// then loses it in turn.
				eventually(t, "the lease ran out in the store", func() bool { return h.holder() == "" })
				h.store.handTo("other", 100*time.Millisecond)
			}
			eventually(t, "the lease ran out in the store", func() bool { return testutil.ToFloat64(h.app.metrics.LeaseFailures) > 0 })
			h.store.setLatency(0)
			if other {
				eventually(t, "a new term", func() bool { return testutil.ToFloat64(h.app.metrics.Takeovers) > takeovers })
				pb = h.wantPlayed("c1", "sound:one") // adopted again: the prompt restarts
			}
			h.fake.FinishPlayback(pb)
			pb = h.wantPlayed("c1", "sound:two")
			h.fake.FinishPlayback(pb)
			h.clean("c1")
			if !other {
				if n := testutil.ToFloat64(h.app.metrics.Takeovers); n != takeovers {
					t.Errorf("%v terms begun, want none: nobody else held the lease", n-takeovers)
				}
				if n := h.count("POST", "/channels/c1/answer"); n != 1 {
					t.Errorf("answered %d times", n)
				}
			}
		})
	}
}

// An active process that cannot reach ARI (its websocket lost, Asterisk
// refusing it) but still reaches Redis resigns its lease once
// ARILossResign has passed, so that a standby that reaches Asterisk can
// serve; it campaigns again only once ARI answers it. Before, it kept the
// lease for ever.
func TestARILostResignsLease(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts}, func(c *Config) { c.ARILossResign = 300 * time.Millisecond })
	var down atomic.Bool
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if down.Load() && (r.Path == "/events" || r.Path == "/asterisk/ping") {
			return 503, `{"message":"Service Unavailable"}`, 0, true
		}
		return 0, "", 0, false
	})
	// Counted from here: on a busy machine the first connect can itself
	// take longer than ARILossResign (a resign and a second term before
	// the harness saw the process ready).
	before := testutil.ToFloat64(h.app.metrics.ARILost)
	down.Store(true)
	lost := time.Now()
	h.fake.DropWebsocket()
	eventually(t, "the lease resigned", func() bool { return h.holder() == "" && !h.app.Active() })
	if d := time.Since(lost); d < h.cfg.ARILossResign {
		t.Errorf("resigned %v after ARI was lost, before ARILossResign", d)
	}
	if n := testutil.ToFloat64(h.app.metrics.ARILost) - before; n != 1 {
		t.Errorf("ariflow_ari_lost_total rose by %v, want 1", n)
	}
	// Not campaigning while ARI does not answer: after a check of ARI
	// refused (only a campaign checks), the lease stays free. A campaign
	// would follow within LeaseTTL/8.
	eventually(t, "a check of ARI refused", func() bool { return h.answeredWith("GET", "/asterisk/ping", 503) >= 1 })
	time.Sleep(h.cfg.LeaseTTL / 2) // nothing may happen: nothing to await
	if holder := h.holder(); holder != "" {
		t.Errorf("lease taken by %s while ARI was unreachable", holder)
	}
	down.Store(false)
	eventually(t, "active again once ARI answers", h.app.Ready)
}

// A call that ended on its own while the process began to stop cleans up
// after itself; one cut short by the stop or the fence is left in place.
func TestLeaving(t *testing.T) {
	t.Parallel()
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	running := context.Background()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"running, flow ended", running, nil, false},
		{"running, fenced", running, fmt.Errorf("save: %w", ErrFenced), true},
		{"stopping, cut short", stopped, context.Canceled, true},
		{"stopping, flow ended", stopped, nil, true},
		{"stopping, caller hung up", stopped, fmt.Errorf("prompt: %w", ErrCallerGone), false},
		{"stopping, handed off", stopped, errHandedOff, false},
		{"stopping, fenced", stopped, ErrFenced, true},
	} {
		if got := leaving(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: leaving = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Redis flushed (the lease and the records gone) while the renewal's
// answer is slow to come: a call whose write the store refuses waits for
// that answer and, the lease taken back, writes again and goes on. It
// used to give up after half a lease lifetime and leave the call "for the
// next active process" while it was still the active one; its record
// gone, the reconcile after the renewal sent the caller to the fallback
// (chaos soak run M).
func TestRefusedWriteWaitsForASlowRenewal(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts}, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
	h.caller("c1", "prompts")
	pb := h.wantPlayed("c1", "sound:one")
	gate := make(chan struct{})
	h.store.mu.Lock()
	h.store.renewGate = gate
	h.store.mu.Unlock()
	h.store.flushAll()
	h.fake.FinishPlayback(pb)
	// The renewal's answer is held for two lease lifetimes (the fault),
	// then given.
	time.Sleep(2 * h.cfg.LeaseTTL)
	h.store.mu.Lock()
	h.store.renewGate = nil
	h.store.mu.Unlock()
	close(gate)
	pb = h.wantPlayed("c1", "sound:two")
	if n := h.count("POST", "/channels/c1/continue"); n != 0 {
		t.Fatalf("the caller was sent to the fallback (%d continue requests)", n)
	}
	h.fake.FinishPlayback(pb)
	h.ended("c1")
}

// A call that ends while the lease has lapsed here for a moment (a slow
// renewal) deletes its record once the lease is back: it was skipped,
// and the record stayed behind the ended call (chaos run Q).
func TestRecordDeletedAfterLapse(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts})
	h.caller("c1", "prompts")
	h.wantPlayed("c1", "sound:one")
	h.load("c1") // saved
	epoch, err := h.app.lease.fence()
	if err != nil {
		t.Fatal(err)
	}
	h.app.lease.set(epoch, time.Now()) // lapsed here until the next renewal
	h.fake.Hangup("c1", 16)
	h.ended("c1")
	eventually(t, "the record deleted", func() bool {
		_, err := h.store.Load(context.Background(), "c1")
		return errors.Is(err, record.ErrNoRecord)
	})
}

// A call that meets the fence while the process stays active (a request
// refused in the instant the lease lapsed here) leaves its record for the
// next active process. That is this one: once the lease is valid again it
// takes the call back (the block reruns from the record), instead of
// leaving the caller in silence until some later reconcile.
func TestFencedCallTakenBackWhileActive(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts})
	h.caller("c1", "prompts")
	pb := h.wantPlayed("c1", "sound:one")
	// Fenced here for a moment, the lease still due to run for a while:
	// the next renewal brings it back without a lapse, which would have
	// had a reconcile of its own. The renewals are held meanwhile (and
	// the lease kept in the store): on a busy machine one would otherwise
	// bring it back before the next block's write.
	gate := make(chan struct{})
	h.store.mu.Lock()
	h.store.renewGate = gate
	h.store.expires = time.Now().Add(time.Minute)
	h.store.mu.Unlock()
	eventually(t, "a renewal held", func() bool {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		return h.store.gated > 0
	})
	h.app.lease.set(0, time.Now().Add(time.Minute))
	h.fake.FinishPlayback(pb) // the next block's write meets the fence
	eventually(t, "the call left", func() bool { return !h.app.isLocal("c1") })
	h.store.mu.Lock()
	h.store.renewGate = nil
	h.store.mu.Unlock()
	close(gate)
	pb = h.wantPlayed("c1", "sound:one") // taken back: its block again
	h.fake.FinishPlayback(pb)
	h.fake.FinishPlayback(h.wantPlayed("c1", "sound:two"))
	h.ended("c1")
	h.clean("c1")
}

// A renewal that finds the lease taken back after another holder ends the
// term, and until the next term begins nothing may act with the lease: a
// call of the ending term that has not yet seen its end would act, under
// the new epoch, on what it knew before another process may have acted.
func TestTakenBackAfterAnotherHolderFencesTheEndingTerm(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []string{twoPrompts})
	a := h.app
	a.lease.set(4, time.Now().Add(time.Minute))
	if err := a.allowed(context.Background()); err != nil {
		t.Fatalf("before: %v", err)
	}
	_, end := a.afterRenewal(context.Background(), renewal{epoch: 4, got: 6, sent: time.Now(), unrenewed: 2 * a.cfg.LeaseTTL})
	if !errors.Is(end, errLeaseRenewedLate) {
		t.Fatalf("renewal: %v; want the term ended (errLeaseRenewedLate)", end)
	}
	if err := a.allowed(context.Background()); !errors.Is(err, ErrFenced) {
		t.Errorf("a request of the ending term: %v; want it fenced", err)
	}
}
