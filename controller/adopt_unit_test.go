package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/store"
	"github.com/ariflow/ariflow/transfer"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	adLeg = aritest.App + "-leg-0001"
	adBr  = aritest.App + "-br-0001"
)

// pbx sets the PBX up as a process that died left it: the caller in
// Stasis, and (legState "down", "up", "bridged", "") the outbound leg and
// the bridge. The app is not connected yet, so these events are lost.
func (h *harness) pbx(legState string) {
	h.t.Helper()
	h.caller("c1", "xfer")
	if legState == "" {
		return
	}
	cl := h.client()
	ctx := context.Background()
	if err := cl.CreateBridge(ctx, adBr, "x"); err != nil {
		h.t.Fatal(err)
	}
	if legState == "gone" {
		return
	}
	if err := cl.Originate(ctx, ari.OriginateRequest{Endpoint: "PJSIP/+4930123456@trunk", App: aritest.App,
		AppArgs: transfer.LegArg + ",c1", ChannelID: adLeg, Originator: "c1", Timeout: 5}); err != nil {
		h.t.Fatal(err)
	}
	if legState == "down" {
		return
	}
	h.fake.Answer(adLeg)
	if legState == "bridged" {
		if err := cl.AddToBridge(ctx, adBr, "c1", adLeg); err != nil {
			h.t.Fatal(err)
		}
	}
}

// madeLeg sets the PBX up as a process of this version that died while
// its leg rang left it: the caller in Stasis, the bridge, and the leg made
// in Stasis and dialled. The app is not connected, so the events are lost.
func (h *harness) madeLeg() {
	h.t.Helper()
	h.caller("c1", "xfer")
	cl := h.client()
	ctx := context.Background()
	if err := cl.CreateBridge(ctx, adBr, "x"); err != nil {
		h.t.Fatal(err)
	}
	if err := cl.Create(ctx, ari.CreateRequest{Endpoint: "PJSIP/+4930123456@trunk", App: aritest.App,
		AppArgs: transfer.LegArg + ",c1", ChannelID: adLeg, Originator: "c1"}); err != nil {
		h.t.Fatal(err)
	}
	if err := cl.Dial(ctx, adLeg, 5*time.Second); err != nil {
		h.t.Fatal(err)
	}
}

// bridgedThenFarEndHangsUp expects the adopted leg, answered, to be
// bridged with the caller; then the far end hangs up and the caller
// resumes at Success.
func (h *harness) bridgedThenFarEndHangsUp() {
	h.t.Helper()
	h.req("POST", "/bridges/"+adBr+"/addChannel")
	h.answered("POST", "/bridges/"+adBr+"/addChannel")
	if m, _ := h.fake.Bridge(adBr); len(m) != 2 {
		h.t.Errorf("bridge members %v", m)
	}
	h.fake.Hangup(adLeg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

func adoptRecord(phase record.Phase, block string, digits string, done int) *record.Call {
	now := time.Now()
	rec := &record.Call{CallID: "c1", Channel: "PJSIP/pbx-1", Flow: "xfer", Version: "1", Block: block, Phase: phase,
		Attributes: flows.Attributes{}, Owner: "dead-process", Epoch: 1, Started: now.Add(-time.Minute), Updated: now}
	if phase == record.PhaseDialing || phase == record.PhaseBridged {
		rec.Outbound, rec.Bridge = adLeg, adBr
		rec.Transfer = &record.Transfer{Number: "+4930123456", Resume: true, Digits: digits, DigitsDone: done,
			Dialed: now.Add(-time.Second), RingDeadline: now.Add(4 * time.Second)}
		if phase == record.PhaseBridged {
			rec.Transfer.Answered = now
		}
	}
	return rec
}

func TestAdoptFlowPhaseRerunsBlock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("")
	h.store.put(adoptRecord(record.PhaseFlow, "ok", "", 0))
	h.start()
	pb := h.wantPlayed("c1", mSuccess)
	h.fake.FinishPlayback(pb)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	h.clean("c1")
	if n := h.count("POST", "/channels/c1/answer"); n != 0 {
		t.Errorf("adopted call answered again")
	}
}

// Dialing, the leg still ringing: it keeps ringing (no new originate) and
// is bridged on answer.
func TestAdoptDialingRinging(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("down")
	h.store.put(adoptRecord(record.PhaseDialing, "xfer", "", 0))
	h.start()
	h.req("POST", "/channels/c1/ring") // the adopter found it ringing: ringback again
	h.fake.Answer(adLeg)
	r := h.req("POST", "/bridges/"+adBr+"/addChannel")
	if r.Query.Get("channel") != "c1,"+adLeg {
		t.Errorf("addChannel %v", r.Query)
	}
	h.answered("POST", "/bridges/"+adBr+"/addChannel")
	h.fake.Hangup(adLeg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
	if n := h.count("POST", "/channels/create"); n != 0 { // only the dead process's originate
		t.Errorf("adopted transfer dialled again")
	}
}

// Dialing, the leg answered while nobody watched: bridged at once.
func TestAdoptDialingAnswered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("up")
	h.store.put(adoptRecord(record.PhaseDialing, "xfer", "", 0))
	h.start()
	h.bridgedThenFarEndHangsUp()
}

// Dialing, a leg this version made in Stasis answered while no process
// had the app (the instant after a crash): it waited in Stasis, and the
// process taking over bridges it. An originated leg would have been hung
// up by Asterisk ("Stasis app not active").
func TestAdoptMadeLegAnsweredWhileNobodyWatched(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.madeLeg()
	h.fake.Answer(adLeg) // nobody connected: the events are lost
	rec := adoptRecord(record.PhaseDialing, "xfer", "", 0)
	rec.Transfer.Created = true
	h.store.put(rec)
	h.start()
	h.bridgedThenFarEndHangsUp()
}

// Dialing, a made leg still ringing at the takeover: its answer (a state
// change, no StasisStart) bridges it.
func TestAdoptMadeLegRinging(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.madeLeg()
	rec := adoptRecord(record.PhaseDialing, "xfer", "", 0)
	rec.Transfer.Created = true
	h.store.put(rec)
	h.start()
	h.req("POST", "/channels/c1/ring") // the adopter found it ringing: ringback again
	h.fake.Answer(adLeg)
	h.answered("POST", "/bridges/"+adBr+"/addChannel")
	h.fake.Hangup(adLeg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// Dialing, the leg ended while nobody watched: CallFailed (Timeout once
// past the ring deadline).
func TestAdoptDialingLegGone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		expired bool
		media   string
		want    transfer.Outcome
	}{{"before the deadline", false, mFailed, transfer.OutcomeCallFailed}, {"past the deadline", true, mTimeout, transfer.OutcomeTimeout}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, xferFlows)
			h.pbx("gone")
			rec := adoptRecord(record.PhaseDialing, "xfer", "", 0)
			if tc.expired {
				rec.Transfer.RingDeadline = time.Now().Add(-time.Second)
			}
			h.store.put(rec)
			h.start()
			h.branchTaken("c1", tc.media, tc.want)
		})
	}
}

// Bridged, the leg gone: the far end hung up while nobody watched; resume
// goes on at Success.
func TestAdoptBridgedLegGone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("gone")
	h.store.put(adoptRecord(record.PhaseBridged, "xfer", "", 0))
	h.start()
	h.req("DELETE", "/bridges/"+adBr)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// Bridged mid-DTMF: the digits go on from Transfer.DigitsDone at once,
// none sent twice.
func TestAdoptBridgedMidDTMF(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows, func(c *Config) { c.DTMFDelay = time.Second })
	h.pbx("bridged")
	rec := adoptRecord(record.PhaseBridged, "xfer", "123", 1)
	rec.Flow = "dtmf"
	h.store.put(rec)
	h.start()
	a := h.req("POST", "/channels/"+adLeg+"/dtmf")
	b := h.req("POST", "/channels/"+adLeg+"/dtmf")
	if a.Query.Get("dtmf") != "2" || b.Query.Get("dtmf") != "3" {
		t.Errorf("digits after takeover: %s %s, want 2 3", a.Query.Get("dtmf"), b.Query.Get("dtmf"))
	}
	h.answered("POST", "/channels/"+adLeg+"/dtmf")
	if n := h.fake.Count("POST", "/channels/"+adLeg+"/dtmf"); n != 2 {
		t.Errorf("%d digits sent, want 2", n)
	}
	eventually(t, "DigitsDone 3 saved", func() bool {
		r, err := h.store.Load(t.Context(), "c1")
		return err == nil && r.Transfer != nil && r.Transfer.DigitsDone == 3 && r.Owner == h.app.Owner()
	})
	h.fake.Hangup(adLeg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// A caller the record says is in the dialplan (e.g. Queue()) is never
// touched; the stale record goes.
func TestAdoptDialplanLeavesCaller(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("")
	h.store.put(adoptRecord(record.PhaseDialplan, "xfer", "", 0))
	if err := h.client().Continue(t.Context(), "c1", "queue", "s", 1); err != nil {
		t.Fatal(err)
	}
	before := len(h.fake.Requests())
	h.start()
	eventually(t, "record deleted", func() bool { return !h.store.has("c1") })
	for _, r := range h.fake.Requests()[before:] {
		if strings.HasPrefix(r.Path, "/channels/c1") {
			t.Errorf("caller in the dialplan touched: %s %s", r.Method, r.Path)
		}
	}
	if _, ok := h.fake.Channel("c1"); !ok {
		t.Error("caller gone")
	}
}

// A record whose caller is gone: its leg is hung up, its bridge destroyed,
// the record deleted.
func TestReconcileCallerGone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("up")
	h.fake.Hangup("c1", 16)
	h.store.put(adoptRecord(record.PhaseBridged, "xfer", "", 0))
	h.start()
	h.req("DELETE", "/channels/"+adLeg)
	h.req("DELETE", "/bridges/"+adBr)
	h.clean("c1")
}

// A caller in the app with no record (Redis lost it): the fallback
// context when set, else the error prompt and a hangup.
func TestReconcileCallerWithoutRecord(t *testing.T) {
	t.Parallel()
	t.Run("fallback context", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, xferFlows, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback", Extension: "100"} })
		h.pbx("")
		h.answerCaller("c1")
		h.start()
		r := h.req("POST", "/channels/c1/continue")
		if r.Query.Get("context") != "fallback" || r.Query.Get("extension") != "100" || r.Query.Get("priority") != "1" {
			t.Errorf("continue %v", r.Query)
		}
		if h.count("DELETE", "/channels/c1") != 0 {
			t.Error("caller hung up")
		}
	})
	t.Run("prompt and hangup", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, xferFlows)
		h.fake.AutoFinishPlayback(0)
		h.pbx("")
		h.answerCaller("c1")
		h.start()
		h.wantPlayed("c1", "sound:sorry-youre-having-problems")
		h.req("DELETE", "/channels/c1")
	})
	t.Run("fallback refused: prompt and hangup", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, xferFlows, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
		h.fake.AutoFinishPlayback(0)
		h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
			if strings.HasSuffix(r.Path, "/continue") {
				return 500, `{"message":"no"}`, 0, true
			}
			return 0, "", 0, false
		})
		h.pbx("")
		h.answerCaller("c1")
		h.start()
		h.wantPlayed("c1", "sound:sorry-youre-having-problems")
		h.req("DELETE", "/channels/c1")
	})
}

// A caller that entered Stasis while no process acted on the app (a
// handover) is not answered yet: its call starts, it is not sent away.
func TestReconcileUnansweredCallerStarts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
	h.pbx("")
	h.start()
	h.req("POST", "/channels/c1/answer")
	h.req("POST", "/channels/create") // the flow's transfer dials
	if n := h.count("POST", "/channels/c1/continue"); n != 0 {
		t.Errorf("a new caller was sent to the fallback (%d)", n)
	}
}

// answerCaller answers a caller channel before the app starts, as ariflow
// would have before it lost the call's record.
func (h *harness) answerCaller(id string) {
	h.t.Helper()
	if err := h.client().Answer(context.Background(), id); err != nil {
		h.t.Fatal(err)
	}
}

// Legs and bridges of this app that no call or record claims are
// removed; another app's are not.
func TestReconcileOrphans(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("up") // leg and bridge of ours, no record
	cl := h.client()
	if err := cl.CreateBridge(context.Background(), "other-br-1", "x"); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.req("DELETE", "/channels/"+adLeg)
	h.req("DELETE", "/bridges/"+adBr)
	if h.count("DELETE", "/bridges/other-br-1") != 0 {
		t.Error("another app's bridge destroyed")
	}
}

// An adopted call whose flow is no longer loaded goes to the fallback.
func TestAdoptFlowNotLoaded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
	h.pbx("")
	rec := adoptRecord(record.PhaseFlow, "ok", "", 0)
	rec.Flow = "gone"
	h.store.put(rec)
	h.start()
	h.req("POST", "/channels/c1/continue")
	h.ended("c1")
	eventually(t, "record deleted", func() bool { return !h.store.has("c1") })
}

// An answered leg of this app that no call and no record claims is hung
// up.
func TestStrayLegHungUp(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	if err := h.client().Originate(context.Background(), ari.OriginateRequest{Endpoint: "PJSIP/x@trunk", App: aritest.App,
		AppArgs: transfer.LegArg + ",nobody", ChannelID: "stray-leg"}); err != nil {
		t.Fatal(err)
	}
	h.fake.Answer("stray-leg")
	h.req("DELETE", "/channels/stray-leg")
}

// A process that adopts a transfer gives back the concurrency slot the
// dead process took for its leg; else each takeover would leak one slot
// until it lapses hours later.
func TestAdoptReleasesConcurrencySlot(t *testing.T) {
	t.Parallel()
	p := policy.Default()
	p.Concurrent = 1
	gate := policy.NewGate(p, policy.NewMemoryLimiter(), policy.NewMemorySlots())
	ctx := context.Background()
	if _, err := gate.Acquire(ctx, policy.Leg{Slot: transfer.Slot("c1", 0), Caller: "+4917600000001", Number: "+4930123456"}); err != nil {
		t.Fatal(err) // the dead process's leg
	}
	h := newHarness(t, xferFlows, func(c *Config) { c.Gate = gate })
	h.pbx("down")
	rec := adoptRecord(record.PhaseDialing, "xfer", "", 0)
	rec.Transfers = 1
	h.store.put(rec)
	h.start()
	h.req("POST", "/channels/c1/ring") // the adopter found it ringing: ringback again
	h.fake.Answer(adLeg)
	h.answered("POST", "/bridges/"+adBr+"/addChannel")
	h.fake.Hangup(adLeg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
	if _, err := gate.Acquire(ctx, policy.Leg{Caller: "+4917600000002", Number: "+4930123456"}); err != nil {
		t.Errorf("the adopted leg's slot was not given back: %v", err)
	}
}

var listFlow = strings.Replace(xferYAML("list", resumeOn), `number: "+4930123456"`,
	`number: ["+4930123456", "+4930123457", "+4930123458"]`, 1)

// originated lists the endpoints of every originate so far.
func (h *harness) originated() []string {
	var out []string
	for _, r := range h.fake.Requests() {
		if r.Method == "POST" && r.Path == "/channels/create" {
			var body struct{ Endpoint string }
			_ = json.Unmarshal(r.Body, &body)
			out = append(out, body.Endpoint)
		}
	}
	return out
}

// A takeover while the first number of a list rang, that number gone
// unanswered meanwhile: the list goes on with the second, as it would
// have without the takeover.
func TestAdoptListGoesOnAfterTheAdoptedNumber(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []string{listFlow})
	h.pbx("gone")
	rec := adoptRecord(record.PhaseDialing, "xfer", "", 0)
	rec.Flow, rec.Transfers, rec.Transfer.Attempt = "list", 1, 1
	h.store.put(rec)
	h.start()
	leg, br := h.leg()
	if got := h.originated(); len(got) != 1 || got[0] != "PJSIP/+4930123457@trunk" {
		t.Fatalf("originated %v; want the second number only", got)
	}
	h.fake.Answer(leg)
	h.answered("POST", "/bridges/"+br+"/addChannel")
	h.fake.Hangup(leg, 16)
	pb := h.wantPlayed("c1", mSuccess)
	got, err := h.store.Load(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if tr := got.Attributes[flows.NSTransfer]; tr[flows.TrAttempts] != "2" || tr[flows.TrNumber] != "+4930123457" {
		t.Errorf("$.Transfer %v; want attempt 2, +4930123457", tr)
	}
	h.fake.FinishPlayback(pb)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	h.clean("c1")
}

// A takeover between two numbers of a list: the next number rings, not
// the first again.
func TestAdoptListBetweenNumbers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []string{listFlow})
	h.pbx("")
	rec := adoptRecord(record.PhaseFlow, "xfer", "", 0)
	rec.Flow, rec.Transfers, rec.ListNext = "list", 2, 2
	h.store.put(rec)
	h.start()
	leg, _ := h.leg()
	if got := h.originated(); len(got) != 1 || got[0] != "PJSIP/+4930123458@trunk" {
		t.Fatalf("originated %v; want only the third number", got)
	}
	h.fake.Hangup(leg, 17) // busy: the last number's outcome is the block's
	h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
}

// The channel list reconcile acts on is a moment old: a caller found in
// the app without a record, but handed to the dialplan (an agents' queue)
// by the time reconcile acts, is left alone, never sent to the fallback
// nor hung up.
func TestReconcileStrayCallerLeftMeanwhile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
	h.pbx("")
	h.answerCaller("c1")
	cl := h.client()
	var once sync.Once
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == "GET" && r.Path == "/channels/c1" {
			// Listed in the app a moment ago; handed to the queue just
			// before reconcile looks again.
			once.Do(func() {
				if err := cl.Continue(context.Background(), "c1", "queue", "s", 1); err != nil {
					t.Error(err)
				}
			})
		}
		return 0, "", 0, false
	})
	h.start()
	eventually(t, "the re-check", func() bool { return h.count("GET", "/channels/c1") > 0 })
	h.answered("GET", "/channels/c1")
	for _, r := range h.fake.Requests() {
		if r.Path == "/channels/c1/continue" && r.Query.Get("context") == "fallback" || r.Method == "DELETE" && r.Path == "/channels/c1" ||
			strings.HasPrefix(r.Path, "/channels/c1/play") {
			t.Errorf("caller in the queue touched: %s %s?%s", r.Method, r.Path, r.Query.Encode())
		}
	}
}

// A stale record whose caller is outside the app (at the fallback desk, in
// a queue) is dropped; the caller is not adopted, so never hung up.
func TestReconcileStaleRecordCallerOutsideApp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("")
	if err := h.client().Continue(t.Context(), "c1", "queue", "s", 1); err != nil {
		t.Fatal(err)
	}
	h.store.put(adoptRecord(record.PhaseFlow, "ok", "", 0))
	before := len(h.fake.Requests())
	h.start()
	eventually(t, "record dropped", func() bool { return !h.store.has("c1") })
	for _, r := range h.fake.Requests()[before:] {
		if strings.HasPrefix(r.Path, "/channels/c1") && r.Method != "GET" {
			t.Errorf("caller outside the app touched: %s %s", r.Method, r.Path)
		}
	}
	if _, ok := h.fake.Channel("c1"); !ok {
		t.Error("caller gone")
	}
}

// A key the caller presses while the process taking over reconciles (its
// call not yet adopted) reaches the call once adopted: events of channels
// no call owns wait until reconcile is done. Before, they were dropped,
// and a caller who pressed 1 at that moment waited in silence for the
// input block's timeout.
func TestReconcileKeepsEventsUntilAdopted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []string{menuFlow})
	h.caller("c1", "menu")
	rec := adoptRecord(record.PhaseFlow, "ask", "", 0)
	rec.Flow = "menu"
	h.store.put(rec)
	var once sync.Once
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == "GET" && r.Path == "/channels" {
			pressed := false
			once.Do(func() { h.fake.DTMF("c1", "2"); pressed = true }) // connected, not yet adopted
			if pressed {
				// The list comes once the key has reached the app (which
				// cannot tell the test so: nothing owns the event yet).
				return 0, "", 300 * time.Millisecond, false
			}
		}
		return 0, "", 0, false
	})
	h.start()
	h.wantPlayed("c1", "sound:menu") // the block restarts; the key stops it
	pb := h.wantPlayed("c1", "sound:two")
	h.fake.FinishPlayback(pb)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
}

// A call taken over after its flow was changed goes on in the version it
// started on: the new process finds it by the record's digest (in the
// store, where the process that ran it kept it), and its list of numbers
// goes on from the record, not from the changed block.
func TestAdoptRunsTheCallsOwnFlowVersion(t *testing.T) {
	t.Parallel()
	v1 := strings.Replace(strings.Replace(listFlow, `version: "1"`, `version: "v1"`, 1), `"sound:br-success"`, `"sound:v1-success"`, 1)
	v2 := strings.Replace(strings.Replace(listFlow, `version: "1"`, `version: "v2"`, 1),
		`number: ["+4930123456", "+4930123457", "+4930123458"]`, `number: ["+4930999001", "+4930999002"]`, 1)
	old, err := flows.Parse("list.yaml", []byte(v1), flows.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, []string{v2})
	if err := h.store.PutFlow(t.Context(), old.Digest, store.ArchivedFlow{Name: old.Name, File: old.File, Source: old.Source}); err != nil {
		t.Fatal(err)
	}
	h.pbx("gone") // the first number's leg ended while nobody watched
	rec := adoptRecord(record.PhaseDialing, "xfer", "", 0)
	rec.Flow, rec.Version, rec.Digest, rec.Transfers = "list", "v1", old.Digest, 1
	rec.Transfer.Attempt = 1
	rec.Transfer.Targets = []record.Target{
		{Number: "+4930123456", Dial: "PJSIP/+4930123456@trunk", TimeoutS: 5},
		{Number: "+4930123457", Dial: "PJSIP/+4930123457@trunk", TimeoutS: 5},
	}
	h.store.put(rec)
	h.start()
	leg, br := h.leg()
	if got := h.originated(); len(got) != 1 || got[0] != "PJSIP/+4930123457@trunk" {
		t.Fatalf("dialled %v; want the started list's second number", got)
	}
	h.fake.Answer(leg)
	h.answered("POST", "/bridges/"+br+"/addChannel")
	h.fake.Hangup(leg, 16)
	pb := h.wantPlayed("c1", "sound:v1-success") // v1's branch, not v2's
	h.fake.FinishPlayback(pb)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	if n := testutil.ToFloat64(h.app.metrics.FlowVersionMissing); n != 0 {
		t.Errorf("flow version missing counted %v times", n)
	}
}

// Reconcile drops the records of callers gone a few at a time: one after
// the other, at a slow Redis's pace, they would hold a takeover up while
// callers with no record wait for it.
func TestReconcileDropsRecordsTogether(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	for i := range 12 {
		rec := adoptRecord(record.PhaseFlow, "xfer", "", 0)
		rec.CallID = fmt.Sprintf("gone-%d", i)
		h.store.put(rec)
	}
	h.store.setLatency(20 * time.Millisecond)
	h.start()
	eventually(t, "records dropped", func() bool {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		return len(h.store.recs) == 0
	})
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	if h.store.deletingMax < 2 {
		t.Errorf("at most %d record dropped at once, want several", h.store.deletingMax)
	}
}

// A stale record whose drop meets the fence (the lease lapsed in the store
// for a moment, on a busy machine) is dropped by the reconcile that
// follows once the lease is valid again, not left behind.
func TestReconcileDropFencedTriedAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	rec := adoptRecord(record.PhaseFlow, "xfer", "", 0)
	rec.CallID = "gone-0"
	h.store.put(rec)
	h.store.mu.Lock()
	h.store.fenceDels = 1
	h.store.mu.Unlock()
	h.start()
	eventually(t, "the record dropped after its drop met the fence", func() bool { return !h.store.has("gone-0") })
}

// A process that wrote a call's first record and stopped before the
// answer left the caller ringing with a record that says so: the process
// taking over answers it, then runs its flow from the start.
func TestAdoptUnansweredCallAnswersIt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("")
	rec := adoptRecord(record.PhaseFlow, "xfer", "", 0)
	rec.Unanswered = true
	h.store.put(rec)
	h.start()
	h.req("POST", "/channels/c1/answer")
	h.answered("POST", "/channels/c1/answer")
	h.req("POST", "/channels/create") // the flow's transfer dials
	if st, _ := h.fake.Channel("c1"); st.State != "Up" {
		t.Errorf("caller %s; want answered before its flow ran", st.State)
	}
}

// A call's first record is written before the caller is answered, saying
// so: an answered caller always has a record, and a call fenced before it
// is left unanswered, for the next active process to start.
func TestFirstRecordBeforeAnswer(t *testing.T) {
	t.Parallel()
	seen := make(chan *record.Call, 1)
	h := run(t, xferFlows)
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == "POST" && r.Path == "/channels/c1/answer" {
			rec, _ := h.store.Load(context.Background(), "c1")
			select {
			case seen <- rec:
			default:
			}
		}
		return 0, "", 0, false
	})
	h.caller("c1", "xfer")
	h.req("POST", "/channels/c1/answer")
	if rec := <-seen; rec == nil || !rec.Unanswered || rec.Phase != record.PhaseFlow {
		t.Fatalf("record when the answer left: %+v; want one written, saying unanswered", rec)
	}
	leg, _ := h.leg()
	if rec := h.load("c1"); rec.Unanswered || rec.Outbound != leg {
		t.Errorf("record once dialling: unanswered %v, outbound %q; want answered, %q", rec.Unanswered, rec.Outbound, leg)
	}
	h.fake.Hangup("c1", 16)
	h.ended("c1")
	h.clean("c1")
}

// A call whose first record is refused by the fence (the lease went to
// another process an instant ago) is not answered and not hung up: left
// ringing in Stasis, it is a new call for the next active process
// (TestReconcileUnansweredCallerStarts), not a caller without a record
// sent to the fallback.
func TestCallFencedBeforeFirstRecordLeftUnanswered(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	// Renewals held: the process learns of the loss from the refused
	// write, not from a renewal that could come first on a busy machine
	// (it would stand by and never see the caller).
	gate := make(chan struct{})
	h.store.mu.Lock()
	h.store.renewGate = gate
	h.store.mu.Unlock()
	t.Cleanup(func() { close(gate) })
	h.store.handTo("other", time.Minute)
	h.caller("c1", "xfer")
	h.ended("c1")
	for _, r := range h.fake.Requests() {
		if strings.HasPrefix(r.Path, "/channels/c1") || r.Path == "/channels/create" {
			t.Errorf("request for a call this process could not record: %s %s", r.Method, r.Path)
		}
	}
	if st, ok := h.fake.Channel("c1"); !ok || st.State == "Up" {
		t.Errorf("caller %+v (there: %v); want it still ringing in Stasis", st, ok)
	}
}
