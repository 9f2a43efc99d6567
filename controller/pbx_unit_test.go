package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// pbxFlow is xferFlow carried by the PBX's Dial().
var pbxFlow = xferYAML("xfer", "    dial_via: pbx\n    dtmf: \"12#\"\n"+resumeOn)

// handedToPBX waits for the caller's hand-off to [ariflow-dial] and
// checks what it was given and the record written before it.
// The fields come in the extension (DIAL...) when they fit one, else in
// ARIFLOW_DIAL with the extension s.
func (h *harness) handedToPBX(id, wantFields string) {
	h.t.Helper()
	cont := h.req("POST", "/channels/"+id+"/continue")
	h.answered("POST", "/channels/"+id+"/continue") // the caller is in the dialplan
	exten := "DIAL" + wantFields
	if _, fits := pbxExten(wantFields); !fits {
		exten = "s"
		v := h.req("POST", "/channels/"+id+"/variable")
		if got := v.Query.Get("variable") + "=" + v.Query.Get("value"); got != "ARIFLOW_DIAL="+wantFields {
			h.t.Errorf("variable set: %s, want ARIFLOW_DIAL=%s", got, wantFields)
		}
	} else {
		for _, r := range h.fake.Requests() {
			if r.Path == "/channels/"+id+"/variable" && r.Query.Get("variable") == "ARIFLOW_DIAL" {
				h.t.Errorf("ARIFLOW_DIAL set for fields that fit the extension")
			}
		}
	}
	if cont.Query.Get("context") != "ariflow-dial" || cont.Query.Get("extension") != exten {
		h.t.Errorf("continued to %v, want ariflow-dial, %s", cont.Query, exten)
	}
	rec := h.load(id)
	if rec.Phase != record.PhasePBX || rec.Transfer == nil || rec.Transfer.Number != "+4930123456" || rec.Transfers < 1 {
		h.t.Errorf("record before the hand-off: phase %s transfer %+v transfers %d", rec.Phase, rec.Transfer, rec.Transfers)
	}
}

// The dial's status, as the caller comes back, takes the branch; nothing
// but the answer, the variable and the continue was asked of Asterisk
// for the transfer.
func TestPBXTransferOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status string
		media  string
		want   transfer.Outcome
	}{
		{"ANSWER", mSuccess, transfer.OutcomeSuccess},
		{"BUSY", mFailed, transfer.OutcomeCallFailed},
		{"CONGESTION", mFailed, transfer.OutcomeCallFailed},
		{"CHANUNAVAIL", mFailed, transfer.OutcomeCallFailed},
		{"NOANSWER", mTimeout, transfer.OutcomeTimeout},
		{"INVALIDARGS", mError, transfer.OutcomeError},
	} {
		t.Run(tc.status, func(t *testing.T) {
			t.Parallel()
			h := run(t, []string{pbxFlow})
			h.caller("c1", "xfer")
			h.handedToPBX("c1", "PJSIP/+4930123456@trunk~5~gD(12#)f(ACME Support <+4930555000>)")
			if !h.fake.EnterStasis("c1", BackArg, tc.status, "3500", "2000", "16") {
				t.Fatal("caller did not enter Stasis")
			}
			pb := h.wantPlayed("c1", tc.media)
			rec := h.load("c1")
			tr := rec.Attributes[flows.NSTransfer]
			if tr[flows.TrStatus] != string(tc.want) || tr[flows.TrNumber] != "+4930123456" {
				t.Errorf("$.Transfer %v, want status %s", tr, tc.want)
			}
			if tc.want == transfer.OutcomeSuccess && (tr[flows.TrTalkTime] != "2.000" || tr[flows.TrRingTime] != "1.500" || tr[flows.TrDigitsSent] != "12#") {
				t.Errorf("answered transfer's $.Transfer %v", tr)
			}
			if rec.Phase != record.PhaseFlow || rec.Transfer != nil {
				t.Errorf("record at the branch: phase %s transfer %+v", rec.Phase, rec.Transfer)
			}
			h.fake.FinishPlayback(pb)
			h.req("DELETE", "/channels/c1")
			h.ended("c1")
			h.clean("c1")
			for _, r := range h.fake.Requests() {
				if r.Method != "GET" && (strings.HasPrefix(r.Path, "/channels/create") || strings.HasPrefix(r.Path, "/bridges")) {
					t.Errorf("the PBX's transfer made %s %s", r.Method, r.Path)
				}
			}
		})
	}
}

// Fields too long for an extension (or not plain) go in ARIFLOW_DIAL.
func TestPBXFieldsInVariable(t *testing.T) {
	t.Parallel()
	long := strings.Replace(pbxFlow, "caller_id_name: ACME Support", "caller_id_name: ACME Support – Versand und Rücksendungen", 1)
	h := run(t, []string{long})
	h.caller("c1", "xfer")
	h.handedToPBX("c1", "PJSIP/+4930123456@trunk~5~gD(12#)f(ACME Support – Versand und Rücksendungen <+4930555000>)")
	h.fake.EnterStasis("c1", BackArg, "NOANSWER", "5000", "", "19")
	h.branchTaken("c1", mTimeout, transfer.OutcomeTimeout)
}

// A caller who hangs up in the dialplan sends the app nothing: the call
// finds it gone by looking, and ends with nothing left.
func TestPBXCallerHangsUpInDialplan(t *testing.T) {
	t.Parallel()
	h := run(t, []string{pbxFlow}, func(c *Config) { c.PBXCheck = 50 * time.Millisecond })
	ids := []string{"c1", "c2", "c3"}
	for _, id := range ids {
		h.caller(id, "xfer")
		h.handedToPBX(id, "PJSIP/+4930123456@trunk~5~gD(12#)f(ACME Support <+4930555000>)")
	}
	// A drain need not wait for a call the PBX carries.
	eventually(t, "the calls no longer counted as active", func() bool { return h.app.ActiveCalls() == 0 })
	// Looked at together: the list of channels, twice, and then c2 gone
	// from it while the others are still in the dialplan.
	eventually(t, "two looks at every channel", func() bool { return h.count("GET", "/channels") >= 2 })
	h.fake.Hangup("c2", 16)
	if err := h.ended("c2"); err == nil || !strings.Contains(err.Error(), ErrCallerGone.Error()) {
		t.Errorf("c2 ended with %v, want the caller gone", err)
	}
	looks := h.count("GET", "/channels")
	eventually(t, "two more looks", func() bool { return h.count("GET", "/channels") >= looks+2 })
	h.endings.mu.Lock()
	for _, id := range []string{"c1", "c3"} {
		if err, done := h.endings.errs[id]; done {
			t.Errorf("%s ended (%v) with its caller still in the dialplan", id, err)
		}
	}
	h.endings.mu.Unlock()
	for _, id := range ids {
		if n := h.count("GET", "/channels/"+id); n != 0 {
			t.Errorf("%s's caller looked at alone %d times: one look serves every call", id, n)
		}
	}
	for _, id := range []string{"c1", "c3"} {
		h.fake.EnterStasis(id, BackArg, "BUSY", "300", "0", "17")
		h.fake.FinishPlayback(h.wantPlayed(id, mFailed))
		h.req("DELETE", "/channels/"+id) // Disconnect
		if err := h.ended(id); err != nil {
			t.Errorf("%s ended with %v", id, err)
		}
	}
	for _, id := range ids {
		h.clean(id)
	}
}

// A look at every channel taken for an earlier trip to the PBX (the caller
// still in the app, back from it) says nothing of the trip under way:
// taken for this one, it would end the transfer with the earlier result.
func TestPBXLookOfAnEarlierTrip(t *testing.T) {
	t.Parallel()
	h := run(t, []string{pbxFlow})
	h.caller("c1", "xfer")
	h.handedToPBX("c1", "PJSIP/+4930123456@trunk~5~gD(12#)f(ACME Support <+4930555000>)")
	back := &ari.Channel{ID: "c1"}
	back.Dialplan.AppName, back.Dialplan.AppData = "Stasis", "ariflow,"+BackArg+",ANSWER,9000,8000,16"
	eventually(t, "the call waiting for the PBX", func() bool {
		waiting := false
		h.withCall("c1", func(c *call) {
			h.app.pbxMu.Lock()
			defer h.app.pbxMu.Unlock()
			waiting = h.app.pbxWaiting[c] != nil
		})
		return waiting
	})
	h.withCall("c1", func(c *call) { c.deliver(&pbxSeen{wait: &pbxWait{}, ch: back}) })
	h.fake.EnterStasis("c1", BackArg, "BUSY", "300", "0", "17")
	h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
}

// Without resume, the call ends with an answered transfer (Connect's
// resume off), with no prompt and no other block.
func TestPBXTransferWithoutResume(t *testing.T) {
	t.Parallel()
	off := strings.Replace(offFlow, "    resume: false\n", "    resume: false\n    dial_via: pbx\n", 1)
	h := run(t, []string{off})
	h.caller("c1", "off")
	cont := h.req("POST", "/channels/c1/continue")
	h.answered("POST", "/channels/c1/continue")
	// Dialled without g (pbxEnds): the PBX hangs the caller up itself. A
	// caller sent back all the same (a dialplan of an older version) is
	// hung up by the call.
	if f := strings.Split(cont.Query.Get("extension"), "~"); len(f) != 3 || strings.Contains(f[2], "g") {
		t.Errorf("continued to %q, want the fields without g", cont.Query.Get("extension"))
	}
	h.fake.EnterStasis("c1", BackArg, "ANSWER", "1000", "500", "16")
	h.req("DELETE", "/channels/c1")
	if err := h.ended("c1"); err != nil {
		t.Errorf("call ended with %v", err)
	}
	h.clean("c1")
	if n := h.count("POST", "/channels/c1/play"); n != 0 {
		t.Errorf("%d prompts played to a caller whose transfer ended the call", n)
	}
}

// A process that takes the call over while the PBX carries it leaves the
// caller in the dialplan and takes it back when it returns; one that finds
// it back already, or back while nobody waited, goes on at once.
func TestAdoptPBXTransfer(t *testing.T) {
	t.Parallel()
	for _, when := range []string{"returns later", "back before the takeover", "back to a process not waiting", "never left", "never left, no dial string"} {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			check := 50 * time.Millisecond
			if when == "never left" {
				check = time.Minute // the adopter's own second look hands it over
			}
			h := newHarness(t, []string{pbxFlow}, func(c *Config) { c.PBXCheck = check })
			h.pbx("")
			rec := adoptRecord(record.PhasePBX, "xfer", "", 0)
			rec.Transfers = 1
			rec.Transfer = &record.Transfer{Number: "+4930123456", Resume: true, Digits: "12#", Attempt: 1, Dialed: time.Now()}
			switch when {
			case "never left":
				// The record was written, the continue never made (its
				// process ended between the two): the caller is still in
				// the app with its entry's arguments. Not taken for back at
				// the first look (a continue just answered leaves a moment
				// later), it is handed to the PBX at the second, pbxRelook
				// later (not at the next list of channels), with the
				// record's fields; its return takes the branch.
				rec.Transfer.Targets = []record.Target{{Number: "+4930123456", Dial: "PJSIP/+4930123456@trunk", TimeoutS: 5}}
				rec.Transfer.CallerIDNumber, rec.Transfer.CallerIDName = "+4930555000", "ACME Support"
				h.store.put(rec)
				h.start()
				h.handedToPBX("c1", "PJSIP/+4930123456@trunk~5~gD(12#)f(ACME Support <+4930555000>)")
				h.fake.EnterStasis("c1", BackArg, "NOANSWER", "5000", "", "19")
				h.branchTaken("c1", mTimeout, transfer.OutcomeTimeout)
				return
			case "never left, no dial string":
				// A record without the dial string (an older version's)
				// cannot hand it over: Error, the dial's status unknown.
				h.store.put(rec)
				h.start()
				h.branchTaken("c1", mError, transfer.OutcomeError)
				if r := h.fake.Requests(); slices.ContainsFunc(r, func(r aritest.Request) bool { return r.Path == "/channels/c1/continue" }) {
					t.Error("caller continued without the transfer's fields")
				}
				return
			}
			if err := h.client().Continue(t.Context(), "c1", "ariflow-dial", "s", 1); err != nil {
				t.Fatal(err)
			}
			switch when {
			case "returns later":
				h.store.put(rec)
				before := len(h.fake.Requests())
				h.start()
				eventually(t, "the call adopted", func() bool { return h.app.isLocal("c1") })
				for _, r := range h.fake.Requests()[before:] {
					if strings.HasPrefix(r.Path, "/channels/c1") && r.Method != "GET" {
						t.Errorf("caller in the PBX's Dial() touched: %s %s", r.Method, r.Path)
					}
				}
				h.fake.EnterStasis("c1", BackArg, "NOANSWER", "5000", "", "19")
				h.branchTaken("c1", mTimeout, transfer.OutcomeTimeout)
			case "back before the takeover":
				h.store.put(rec)
				h.fake.EnterStasis("c1", BackArg, "BUSY", "800", "", "17")
				h.start()
				h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
			case "back to a process not waiting":
				h.start()
				h.store.put(rec)
				h.fake.EnterStasis("c1", BackArg, "ANSWER", "3000", "2000", "16")
				h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
			}
		})
	}
}

func TestPBXFields(t *testing.T) {
	plan := transfer.Plan{Targets: []record.Target{{Number: "+4930123456", Dial: "PJSIP/+4930123456@trunk", TimeoutS: 20}},
		Digits: "1w2", CallerIDNumber: "+4930555000", CallerIDName: "Desk"}
	for _, tc := range []struct {
		name               string
		edit               func(p *transfer.Plan)
		delay              time.Duration
		ownNumber, ownName string // the caller's own caller ID
		want               string
		ends               bool // the call ends with the transfer: no g
	}{
		{"digits at once", func(*transfer.Plan) {}, 0, "", "", "PJSIP/+4930123456@trunk~20~gD(1w2)f(Desk <+4930555000>)", false},
		{"digits after 500 ms", func(*transfer.Plan) {}, 500 * time.Millisecond, "", "", "PJSIP/+4930123456@trunk~20~gD(w1w2)f(Desk <+4930555000>)", false},
		{"digits after 1 s", func(*transfer.Plan) {}, time.Second, "", "", "PJSIP/+4930123456@trunk~20~gD(ww1w2)f(Desk <+4930555000>)", false},
		{"no digits", func(p *transfer.Plan) { p.Digits = "" }, time.Second, "", "", "PJSIP/+4930123456@trunk~20~gf(Desk <+4930555000>)", false},
		{"the caller's own number", func(*transfer.Plan) {}, 0, "+4930555000", "Alice", "PJSIP/+4930123456@trunk~20~gD(1w2)f(Desk <=>)", false},
		{"the caller's own number and name: no f", func(*transfer.Plan) {}, 0, "+4930555000", "Desk", "PJSIP/+4930123456@trunk~20~gD(1w2)", false},
		{"another caller", func(*transfer.Plan) {}, 0, "+4917612345678", "Alice", "PJSIP/+4930123456@trunk~20~gD(1w2)f(Desk <+4930555000>)", false},
		{"no name, the caller none either: no f", func(p *transfer.Plan) { p.CallerIDName = "" }, 0, "+4930555000", "", "PJSIP/+4930123456@trunk~20~gD(1w2)", false},
		{"no name, the caller has one: the name taken out", func(p *transfer.Plan) { p.CallerIDName = "" }, 0, "+4930555000", "Alice", "PJSIP/+4930123456@trunk~20~gD(1w2)f(<=>)", false},
		{"anonymous", func(p *transfer.Plan) { p.CallerIDNumber, p.CallerIDName = "anonymous", "" }, 0, "030123", "", "PJSIP/+4930123456@trunk~20~gD(1w2)f(<anonymous>)", false},
		{"a bracket in the name", func(p *transfer.Plan) { p.CallerIDName = "Desk (2)" }, 0, "", "", "", false},
		{"a pause ','", func(p *transfer.Plan) { p.Digits = "1,2" }, 0, "", "", "", false},
		{"a separator in the name", func(p *transfer.Plan) { p.CallerIDName = "A~B" }, 0, "", "", "", false},
		{"a comma in the name", func(p *transfer.Plan) { p.CallerIDName = "Doe, Jane" }, 0, "", "", "", false},
		{"two numbers", func(p *transfer.Plan) { p.Targets = append(p.Targets, p.Targets[0]) }, 0, "", "", "", false},
		{"the call ends with it", func(*transfer.Plan) {}, 0, "", "", "PJSIP/+4930123456@trunk~20~D(1w2)f(Desk <+4930555000>)", true},
		{"the call ends with it, no options", func(p *transfer.Plan) { p.Digits = "" }, 0, "+4930555000", "Desk", "PJSIP/+4930123456@trunk~20~", true},
	} {
		p := plan
		p.Targets = append([]record.Target(nil), plan.Targets...)
		tc.edit(&p)
		got, err := pbxFields(p, tc.delay, tc.ownNumber, tc.ownName, tc.ends)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s: %q, want an error", tc.name, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// The operator's -dial-via pbx carries the blocks that set no dial_via
// and use Connect's settings only; a block with an option beyond them, or
// with dial_via: ari, is dialled over ARI.
func TestPBXAsTheOperatorsDefault(t *testing.T) {
	t.Parallel()
	keyed := xferYAML("keyed", "    return_key: \"**\"\n"+resumeOn)
	pinned := xferYAML("pinned", "    dial_via: ari\n"+resumeOn)
	for _, tc := range []struct {
		entry string
		pbx   bool
	}{{"xfer", true}, {"keyed", false}, {"pinned", false}} {
		t.Run(tc.entry, func(t *testing.T) {
			t.Parallel()
			h := run(t, []string{xferFlow, keyed, pinned}, func(c *Config) { c.DialVia = flows.DialViaPBX })
			h.caller("c1", tc.entry)
			if tc.pbx {
				h.handedToPBX("c1", "PJSIP/+4930123456@trunk~5~gf(ACME Support <+4930555000>)")
				h.fake.EnterStasis("c1", BackArg, "BUSY", "500", "", "17")
				h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
				return
			}
			leg, _ := h.leg()
			h.fake.Hangup(leg, 17)
			h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
			if n := h.count("POST", "/channels/c1/continue"); n != 0 {
				t.Errorf("the caller was continued %d times", n)
			}
		})
	}
}

// Redis losing the record while the PBX carries the transfer: the waiting
// call writes it again when asked (as every call does), so that a process
// taking over later still finds the caller's way back.
func TestPBXRecordWrittenAgainAfterLoss(t *testing.T) {
	t.Parallel()
	h := run(t, []string{pbxFlow})
	h.caller("c1", "xfer")
	h.handedToPBX("c1", "PJSIP/+4930123456@trunk~5~gD(12#)f(ACME Support <+4930555000>)")
	h.store.flush()
	h.app.resaveAll()
	eventually(t, "the record written again", func() bool { return h.store.has("c1") })
	if rec := h.load("c1"); rec.Phase != record.PhasePBX || rec.Transfer == nil {
		t.Errorf("record written again: phase %s transfer %+v", rec.Phase, rec.Transfer)
	}
	h.fake.EnterStasis("c1", BackArg, "ANSWER", "1000", "800", "16")
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// chainFlow: a PBX-carried transfer whose Success leads to an agent the
// PBX dials too.
var chainFlow = `
name: chain
version: "1"
entry: ["chain"]
start: xfer
blocks:
  xfer:
    type: TransferToPhoneNumber
    number: "+4930123456"
    timeout: 5
    dtmf: "12"
    caller_id_number: "+4930555000"
    dial_via: pbx
    branches: {Success: agent, CallFailed: failed, Timeout: timeout, Error: error}
  agent:
    type: TransferToAgent
    endpoint: "+4930111009"
    dial_via: pbx
    branches: {CallFailed: failed, Timeout: timeout, Error: error}
  failed: {type: PlayPrompt, prompts: ["sound:br-callfailed"], branches: {Next: bye}}
  timeout: {type: PlayPrompt, prompts: ["sound:br-timeout"], branches: {Next: bye}}
  error: {type: PlayPrompt, prompts: ["sound:br-error"], branches: {Next: bye}}
  bye: {type: Disconnect}
`

// The agent after Success is handed to the PBX with the transfer before
// it (its fields after the first's), counted ahead; the caller comes
// back once, with both results, and the flow goes on from the agent's.
func TestPBXChainedTransfer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		args  []string
		media string // "" : the call ends with the agent's answered transfer
		want  transfer.Outcome
	}{
		{"both answered", []string{"ANSWER", "900", "700", "16", "ANSWER~3500~2000~16"}, "", transfer.OutcomeSuccess},
		{"the agent busy", []string{"BUSY", "500", "", "17", "ANSWER~3500~2000~16"}, mFailed, transfer.OutcomeCallFailed},
		{"the first not answered", []string{"NOANSWER", "5000", "", "19", ""}, mTimeout, transfer.OutcomeTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := run(t, []string{chainFlow})
			h.caller("c1", "chain")
			// Both do not fit the extension: one variable carries both.
			h.handedToPBX("c1", "PJSIP/+4930123456@trunk~5~gD(12)f(<+4930555000>)~PJSIP/+4930111009@trunk~30~")
			rec := h.load("c1")
			if rec.Transfers != 2 || rec.Transfer.Next == nil || rec.Transfer.Next.Block != "agent" || rec.Transfer.Next.Slot != transfer.Slot("c1", 1) {
				t.Fatalf("record: transfers %d next %+v", rec.Transfers, rec.Transfer.Next)
			}
			h.fake.EnterStasis("c1", append([]string{BackArg}, tc.args...)...)
			if tc.media == "" {
				h.req("DELETE", "/channels/c1")
				if err := h.ended("c1"); err != nil {
					t.Errorf("call ended with %v", err)
				}
				h.clean("c1")
			} else {
				h.branchTaken("c1", tc.media, tc.want)
			}
			if n := h.count("POST", "/channels/c1/continue"); n != 1 {
				t.Errorf("the caller was continued %d times, want once", n)
			}
		})
	}
}

// chainOnRedis runs chainFlow with the dial policy's counters on a
// miniredis, which the store's writes run their counts on too (as the
// Redis store does): a policy that limits nothing, edited by pol; cfg
// edits the rest of the configuration (nil: nothing).
func chainOnRedis(t *testing.T, pol func(*policy.Policy), cfg func(*Config)) (*harness, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	p := policy.Default()
	p.PerCaller, p.PerEntry, p.Global, p.Concurrent = policy.Rate{}, policy.Rate{}, policy.Rate{}, 0
	pol(p)
	counters := policy.NewRedisCounters(rdb, "t:")
	h := newHarness(t, []string{chainFlow}, func(c *Config) {
		c.Gate = policy.NewGate(p, counters, counters)
		if cfg != nil {
			cfg(c)
		}
	})
	h.store.along = rdb
	h.start()
	return h, mr
}

// The agent chained to the transfer ends the call: dialled without g, the
// PBX hangs the caller up as the agent hangs up, and the call learns of
// its end at a look: no hangup sent, the record gone, both legs' slots
// given back in one step, the end counted as the agent's ended-in-pbx.
// PBXBackAlways keeps g, and the caller comes back to be hung up.
func TestPBXEndsTheCall(t *testing.T) {
	t.Parallel()
	for _, back := range []bool{false, true} {
		t.Run(fmt.Sprintf("back always %v", back), func(t *testing.T) {
			t.Parallel()
			h, mr := chainOnRedis(t, func(p *policy.Policy) { p.Concurrent = 2 }, func(c *Config) {
				c.PBXCheck, c.PBXBackAlways = 50*time.Millisecond, back
			})
			h.caller("c1", "chain")
			opts := ""
			if back {
				opts = "g"
			}
			h.handedToPBX("c1", "PJSIP/+4930123456@trunk~5~gD(12)f(<+4930555000>)~PJSIP/+4930111009@trunk~30~"+opts)
			if back {
				h.fake.EnterStasis("c1", BackArg, "ANSWER", "900", "700", "16", "ANSWER~3500~2000~16")
				h.req("DELETE", "/channels/c1")
				if err := h.ended("c1"); err != nil {
					t.Errorf("call ended with %v", err)
				}
			} else {
				if held, _ := mr.ZMembers("t:slots:legs"); len(held) != 2 {
					t.Errorf("slots held %q, want both legs'", held)
				}
				cmds := mr.CommandCount()
				h.fake.Hangup("c1", 16)
				if err := h.ended("c1"); !errors.Is(err, errEndedInPBX) {
					t.Errorf("call ended with %v, want %v", err, errEndedInPBX)
				}
				if n := h.count("DELETE", "/channels/c1"); n != 0 {
					t.Errorf("%d hangups sent for a caller the PBX hung up", n)
				}
				if n := mr.CommandCount() - cmds; n != 1 {
					t.Errorf("%d Redis commands to give the slots back, want 1", n)
				}
			}
			h.clean("c1")
			if held, _ := mr.ZMembers("t:slots:legs"); len(held) != 0 {
				t.Errorf("slots still held: %q", held)
			}
			want := 0.0
			if !back {
				want = 1
			}
			if n := testutil.ToFloat64(h.app.metrics.Transfers.WithLabelValues("agent-" + pbxEndedOutcome)); n != want {
				t.Errorf("ariflow_transfers_total{outcome=agent-%s} %v, want %v", pbxEndedOutcome, n, want)
			}
		})
	}
}

// chainOwnFlow is chainFlow showing the far end the caller's own number:
// both transfers' fields fit the extension.
var chainOwnFlow = strings.Replace(chainFlow, `caller_id_number: "+4930555000"`, `caller_id_number: $.System.CallerNumber`, 1)

// Both transfers' fields in the extension, the chained one's after the
// first's: no variable is set; a chained leg the dial policy does not
// count is left out of it (the PBX must not dial it).
func TestPBXChainedTransferInTheExtension(t *testing.T) {
	t.Parallel()
	const first = "PJSIP/+4930123456@trunk~5~gD(12)f(<=>)"
	for _, tc := range []struct {
		name    string
		flow    string
		fields  string
		chained bool
	}{
		{"counted", chainOwnFlow, first + "~PJSIP/+4930111009@trunk~30~", true},
		{"not counted", strings.Replace(chainOwnFlow, "start: xfer\n", "start: xfer\ndial_policy: {transfers_per_call: 1}\n", 1), first, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := run(t, []string{tc.flow})
			h.caller("c1", "chain")
			h.handedToPBX("c1", tc.fields)
			if n := h.count("POST", "/channels/c1/variable"); n != 0 {
				t.Errorf("%d variables set on the caller, want none", n)
			}
			rec := h.load("c1")
			if got := rec.Transfer.Next != nil; got != tc.chained {
				t.Fatalf("record: chained %v (%+v), want %v", got, rec.Transfer.Next, tc.chained)
			}
			if tc.chained {
				h.fake.EnterStasis("c1", BackArg, "ANSWER", "900", "700", "16", "ANSWER~3500~2000~16")
				h.req("DELETE", "/channels/c1")
			} else {
				// The agent, not counted then either, is not dialled at all.
				h.fake.EnterStasis("c1", BackArg, "ANSWER", "3500", "2000", "16")
				h.fake.FinishPlayback(h.wantPlayed("c1", mError))
				h.req("DELETE", "/channels/c1")
			}
			if err := h.ended("c1"); err != nil {
				t.Errorf("call ended with %v", err)
			}
			h.clean("c1")
			if n := h.count("POST", "/channels/c1/continue"); n != 1 {
				t.Errorf("the caller was continued %d times, want once", n)
			}
		})
	}
}

// A process that did not hand the caller over takes it back with both
// results from the record: the first transfer's Success, then the
// chained agent's branch.
func TestAdoptPBXChainedTransfer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []string{chainFlow})
	h.fake.Caller("c1", "+4917612345678", "Alice", "chain")
	rec := adoptRecord(record.PhasePBX, "xfer", "", 0)
	rec.Flow, rec.Transfers = "chain", 2
	rec.Transfer = &record.Transfer{Number: "+4930123456", Resume: true, Digits: "12", Attempt: 1, Dialed: time.Now(),
		Next: &record.Chained{Block: "agent", Number: "+4930111009", Agent: true, Slot: transfer.Slot("c1", 1)}}
	if err := h.client().Continue(t.Context(), "c1", "ariflow-dial", "s", 1); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.store.put(rec)
	h.fake.EnterStasis("c1", BackArg, "BUSY", "500", "", "17", "ANSWER~3500~2000~16")
	pb := h.wantPlayed("c1", mFailed)
	tr := h.load("c1").Attributes[flows.NSTransfer]
	if tr[flows.TrStatus] != string(transfer.OutcomeCallFailed) || tr[flows.TrNumber] != "+4930111009" {
		t.Errorf("$.Transfer after the chained agent: %v", tr)
	}
	h.fake.FinishPlayback(pb)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	h.clean("c1")
}

// A process that wrote the record (both transfers counted) and ended
// before the continue: the adopter hands the caller over with the
// record's fields, and the chained transfer's when the flow still chains
// the same one; else without it, given back and recorded so first.
func TestAdoptPBXChainedNeverLeft(t *testing.T) {
	t.Parallel()
	const first = "PJSIP/+4930123456@trunk~5~gD(12)f(<+4930555000>)"
	for _, tc := range []struct {
		name, next, fields string
		transfers          int
	}{
		{"the flow chains it still", "agent", first + "~PJSIP/+4930111009@trunk~30~", 2},
		{"the flow chains another", "other", first, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, []string{chainFlow}, func(c *Config) { c.PBXCheck = 50 * time.Millisecond })
			h.fake.Caller("c1", "+4917612345678", "Alice", "chain")
			rec := adoptRecord(record.PhasePBX, "xfer", "", 0)
			rec.Flow, rec.Transfers = "chain", 2
			rec.Attributes[flows.NSSystem] = map[string]string{flows.SysCallerNumber: "+4917612345678", flows.SysCallerName: "Alice"}
			rec.Transfer = &record.Transfer{Number: "+4930123456", Resume: true, Digits: "12", Attempt: 1, Dialed: time.Now(),
				Targets:        []record.Target{{Number: "+4930123456", Dial: "PJSIP/+4930123456@trunk", TimeoutS: 5}},
				CallerIDNumber: "+4930555000",
				Next:           &record.Chained{Block: tc.next, Number: "+4930111009", Agent: true, Slot: transfer.Slot("c1", 1)}}
			h.store.put(rec)
			h.start()
			h.handedToPBX("c1", tc.fields)
			if got := h.load("c1"); got.Transfers != tc.transfers || (got.Transfer.Next == nil) != (tc.transfers == 1) {
				t.Errorf("record at the hand-off: transfers %d next %+v", got.Transfers, got.Transfer.Next)
			}
			h.fake.EnterStasis("c1", BackArg, "NOANSWER", "5000", "", "19")
			h.branchTaken("c1", mTimeout, transfer.OutcomeTimeout)
		})
	}
}

// The continue cut mid-flight (no answer: a websocket cut closes the REST
// connections too) may or may not have been carried out. Carried out:
// the caller's return is awaited as usual, and it is not continued
// again. Not: the caller, found still in the app with its entry's
// arguments, is handed to the PBX again, once; the branch follows its
// return either way (not Error).
func TestPBXContinueCut(t *testing.T) {
	t.Parallel()
	for _, carried := range []bool{true, false} {
		name := map[bool]string{true: "carried out", false: "not carried out"}[carried]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := run(t, []string{pbxFlow}, func(c *Config) { c.PBXCheck = 50 * time.Millisecond })
			cl := h.client()
			var made atomic.Int32 // continues ariflow made
			var own atomic.Bool   // the test's own, carrying the cut one out
			h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
				if r.Path != "/channels/c1/continue" || own.Load() || made.Add(1) > 1 {
					return 0, "", 0, false
				}
				if carried {
					own.Store(true)
					if err := cl.Continue(context.Background(), "c1", r.Query.Get("context"), r.Query.Get("extension"), 1); err != nil {
						t.Errorf("the continue carried out: %v", err)
					}
					own.Store(false)
				}
				return aritest.Cut, "", 0, true
			})
			h.caller("c1", "xfer")
			want := 1
			if !carried {
				want = 2 // the cut one, and the one that handed it over
			}
			eventually(t, "the caller handed to the PBX", func() bool {
				st, ok := h.fake.Channel("c1")
				return int(made.Load()) >= want && ok && !st.InStasis
			})
			h.fake.EnterStasis("c1", BackArg, "BUSY", "500", "", "17")
			h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
			if n := int(made.Load()); n != want {
				t.Errorf("ariflow continued the caller %d times, want %d", n, want)
			}
		})
	}
}

// The caller's return found by looking before its events came (they were
// held up: a stalled or replaced event path): the StasisEnd of its leaving
// and the StasisStart of its return, arriving after, are not taken for a
// hangup or anything else; the flow goes on from the dial's status.
func TestPBXReturnFoundBeforeItsEvents(t *testing.T) {
	t.Parallel()
	h := run(t, []string{pbxFlow}, func(c *Config) { c.PBXCheck = 50 * time.Millisecond })
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Path == "/channels/c1/answer" {
			return 0, "", 200 * time.Millisecond, false
		}
		return 0, "", 0, false
	})
	h.caller("c1", "xfer")
	h.req("POST", "/channels/c1/answer")
	h.fake.Pause() // from here on, events wait: the continue's StasisEnd too
	h.req("POST", "/channels/c1/continue")
	h.answered("POST", "/channels/c1/continue")
	h.fake.EnterStasis("c1", BackArg, "BUSY", "500", "", "17")
	pb := h.wantPlayed("c1", mFailed)
	h.fake.Resume()
	h.fake.FinishPlayback(pb)
	h.req("DELETE", "/channels/c1") // Disconnect: the caller was never taken for gone
	if err := h.ended("c1"); err != nil {
		t.Errorf("call ended with %v", err)
	}
	h.clean("c1")
}

// Both transfers' fields did not fit the extension and went in
// ARIFLOW_DIAL beside the count; the dial policy then refused the chained
// leg: the caller is continued with the first's fields alone, in the
// extension (which [ariflow-dial] reads instead of the variable), so
// that the PBX never dials a leg the policy did not count.
func TestPBXChainNotCountedLeavesTheVariable(t *testing.T) {
	t.Parallel()
	const first = "PJSIP/+4930123456@trunk~5~gD(12)f(<+4930555000>)"
	h := run(t, []string{strings.Replace(chainFlow, "start: xfer\n", "start: xfer\ndial_policy: {transfers_per_call: 1}\n", 1)})
	h.caller("c1", "chain")
	cont := h.req("POST", "/channels/c1/continue")
	h.answered("POST", "/channels/c1/continue")
	if got := cont.Query.Get("extension"); got != pbxExtenPrefix+first {
		t.Errorf("continued to %q, want %q", got, pbxExtenPrefix+first)
	}
	if rec := h.load("c1"); rec.Transfer == nil || rec.Transfer.Next != nil || rec.Transfers != 1 {
		t.Fatalf("record: %+v", rec.Transfer)
	}
	h.fake.EnterStasis("c1", BackArg, "BUSY", "500", "", "17")
	h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
}

// With the dial policy's counters on Redis, the chained transfer's leg is
// counted in the "pbx" write's own script, after this transfer's leg: one
// round trip for both. Refused by the cap or by a rate, it is left out
// (the record written without it, the PBX not asked to dial it) and this
// transfer goes on; the first leg is never refused for the chained one's
// count.
func TestPBXChainCountedWithTheWrite(t *testing.T) {
	t.Parallel()
	const first = "PJSIP/+4930123456@trunk~5~gD(12)f(<+4930555000>)"
	for _, tc := range []struct {
		name    string
		pol     func(*policy.Policy)
		chained bool
	}{
		{"both counted", func(p *policy.Policy) { p.Concurrent = 2 }, true},
		{"the cap leaves no slot for the chained", func(p *policy.Policy) { p.Concurrent = 1 }, false},
		{"the caller's rate leaves none for the chained", func(p *policy.Policy) { p.PerCaller = policy.Rate{Count: 1, Window: time.Hour} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var p *policy.Policy
			h, mr := chainOnRedis(t, func(q *policy.Policy) { tc.pol(q); p = q }, nil)
			h.caller("c1", "chain")
			if tc.chained {
				h.handedToPBX("c1", first+"~PJSIP/+4930111009@trunk~30~")
			} else {
				// The variable set beside the count holds both; the first's
				// fields alone fit the extension.
				cont := h.req("POST", "/channels/c1/continue")
				h.answered("POST", "/channels/c1/continue")
				if got := cont.Query.Get("extension"); got != pbxExtenPrefix+first {
					t.Errorf("continued to %q, want %q", got, pbxExtenPrefix+first)
				}
			}
			rec := h.load("c1")
			if got := rec.Transfer.Next != nil; got != tc.chained || rec.Transfers != map[bool]int{true: 2, false: 1}[tc.chained] {
				t.Fatalf("record: chained %v (want %v), %d transfers", got, tc.chained, rec.Transfers)
			}
			h.store.mu.Lock()
			alongs := h.store.alongs
			h.store.mu.Unlock()
			if alongs != 1 {
				t.Errorf("%d writes carried a count, want 1 (both legs in the \"pbx\" write)", alongs)
			}
			if p.Concurrent > 0 {
				want := []string{transfer.Slot("c1", 0)}
				if tc.chained {
					want = append(want, transfer.Slot("c1", 1))
				}
				got, _ := mr.ZMembers("t:slots:legs")
				if slices.Sort(got); !slices.Equal(got, want) {
					t.Errorf("slots %q, want %q", got, want)
				}
			}
			if tc.chained {
				h.fake.EnterStasis("c1", BackArg, "ANSWER", "900", "700", "16", "ANSWER~3500~2000~16")
				h.req("DELETE", "/channels/c1")
				if err := h.ended("c1"); err != nil {
					t.Errorf("call ended with %v", err)
				}
			} else {
				h.fake.EnterStasis("c1", BackArg, "BUSY", "500", "", "17")
				h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
			}
		})
	}
}
