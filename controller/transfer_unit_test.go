package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// xferYAML is a transfer flow whose every branch plays its own media, so
// that the branch taken shows as a POST .../play.
func xferYAML(name, extra string) string {
	return fmt.Sprintf(`
name: %[1]s
version: "1"
entry: ["%[1]s"]
start: xfer
blocks:
  xfer:
    type: TransferToPhoneNumber
    number: "+4930123456"
    timeout: 5
    caller_id_number: "+4930555000"
    caller_id_name: ACME Support
%[2]s
  ok: {type: PlayPrompt, prompts: ["sound:br-success"], branches: {Next: bye}}
  failed: {type: PlayPrompt, prompts: ["sound:br-callfailed"], branches: {Next: bye}}
  timeout: {type: PlayPrompt, prompts: ["sound:br-timeout"], branches: {Next: bye}}
  error: {type: PlayPrompt, prompts: ["sound:br-error"], branches: {Next: bye}}
  bye: {type: Disconnect}
`, name, extra)
}

var (
	resumeOn = "    resume: true\n    branches: {Success: ok, CallFailed: failed, Timeout: timeout, Error: error}"
	xferFlow = xferYAML("xfer", resumeOn)
	dtmfFlow = xferYAML("dtmf", "    dtmf: \"12,3\"\n"+resumeOn)
	offFlow  = strings.Replace(xferYAML("off", "    resume: false\n    branches: {CallFailed: failed, Timeout: timeout, Error: error}"),
		"  ok: {type: PlayPrompt, prompts: [\"sound:br-success\"], branches: {Next: bye}}\n", "", 1)
	xferFlows = []string{xferFlow, dtmfFlow, offFlow}
)

const (
	mSuccess = "sound:br-success"
	mFailed  = "sound:br-callfailed"
	mTimeout = "sound:br-timeout"
	mError   = "sound:br-error"
)

// branchTaken waits for the branch's prompt, checks the stored
// $.Transfer.Status, lets the prompt end, and waits for the call's end.
func (h *harness) branchTaken(callID, media string, status transfer.Outcome) {
	h.t.Helper()
	pb := h.wantPlayed(callID, media)
	rec, err := h.store.Load(h.t.Context(), callID)
	if err != nil {
		h.t.Fatalf("record at the branch's block: %v", err)
	}
	if got := rec.Attributes[flows.NSTransfer][flows.TrStatus]; got != string(status) {
		h.t.Errorf("$.Transfer.Status = %q, want %q", got, status)
	}
	// The bridge may still be named: kept for a next transfer, it goes
	// with the next block of another kind.
	if rec.Phase != record.PhaseFlow || rec.Outbound != "" {
		h.t.Errorf("record at the branch: phase %s outbound %q", rec.Phase, rec.Outbound)
	}
	h.fake.FinishPlayback(pb)
	h.req("DELETE", "/channels/"+callID) // Disconnect
	h.ended(callID)
	h.clean(callID)
}

func TestTransferOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status string // DIALSTATUS before the hangup, if any
		cause  int
		answer bool
		media  string
		want   transfer.Outcome
	}{
		{"answered then far end hangs up", "", 16, true, mSuccess, transfer.OutcomeSuccess},
		{"busy 17", "BUSY", 17, false, mFailed, transfer.OutcomeCallFailed},
		{"no answer 19", "NOANSWER", 19, false, mTimeout, transfer.OutcomeTimeout},
		{"no user responding 18", "", 18, false, mTimeout, transfer.OutcomeTimeout},
		{"rejected 21", "", 21, false, mFailed, transfer.OutcomeCallFailed},
		{"congestion 34", "CONGESTION", 34, false, mFailed, transfer.OutcomeCallFailed},
		{"unallocated 1 with NOANSWER", "NOANSWER", 1, false, mFailed, transfer.OutcomeCallFailed},
		{"16 with BUSY", "BUSY", 16, false, mFailed, transfer.OutcomeCallFailed},
		{"16 with NOANSWER", "NOANSWER", 16, false, mTimeout, transfer.OutcomeTimeout},
		{"0 with NOANSWER", "NOANSWER", 0, false, mTimeout, transfer.OutcomeTimeout},
		{"16 without status", "", 16, false, mFailed, transfer.OutcomeCallFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := run(t, xferFlows)
			h.caller("c1", "xfer")
			h.req("POST", "/channels/c1/answer")
			leg, br := h.leg()
			orig := h.fake.Requests()
			var body map[string]any
			dialTimeout := ""
			for _, r := range orig {
				if r.Method == "POST" && r.Path == "/channels/create" {
					_ = json.Unmarshal(r.Body, &body)
				}
				if r.Method == "POST" && r.Path == "/channels/"+leg+"/dial" {
					dialTimeout = r.Query.Get("timeout")
				}
			}
			for k, v := range map[string]any{"endpoint": "PJSIP/+4930123456@trunk", "app": aritest.App,
				"appArgs": transfer.LegArg + ",c1", "originator": "c1"} {
				if body[k] != v {
					t.Errorf("create %s = %v, want %v", k, body[k], v)
				}
			}
			if dialTimeout != "5" {
				t.Errorf("dial timeout %q; want 5", dialTimeout)
			}
			ch, _ := h.fake.Channel(leg)
			if ch.ConnectedNumber != "+4930555000" || ch.ConnectedName != "ACME Support" ||
				ch.CallerNumber != "+4930555000" || ch.CallerName != "ACME Support" {
				t.Errorf("far end sees %q <%s> (connected line %q <%s>)", ch.CallerName, ch.CallerNumber, ch.ConnectedName, ch.ConnectedNumber)
			}
			h.req("POST", "/channels/c1/ring")
			if tc.status != "" {
				h.fake.DialStatus(leg, "RINGING")
			}
			if tc.answer {
				h.fake.Answer(leg)
				r := h.req("POST", "/bridges/"+br+"/addChannel")
				if got := r.Query.Get("channel"); got != "c1,"+leg {
					t.Errorf("addChannel channel=%q", got)
				}
				h.answered("POST", "/bridges/"+br+"/addChannel")
				if m, _ := h.fake.Bridge(br); len(m) != 2 {
					t.Errorf("bridge members %v", m)
				}
				h.req("DELETE", "/channels/c1/ring")
				h.fake.Hangup(leg, tc.cause)
			} else {
				if tc.status != "" {
					h.fake.DialStatus(leg, tc.status)
				}
				h.fake.Hangup(leg, tc.cause)
			}
			h.branchTaken("c1", tc.media, tc.want)
			if n := h.count("DELETE", "/bridges/"+br); n != 1 {
				t.Errorf("bridge destroyed %d times, want 1", n)
			}
			if n := h.count("DELETE", "/channels/"+leg); n != 0 {
				t.Errorf("leg that hung up by itself hung up again %d times", n)
			}
			if n := h.count("POST", "/channels/create"); n != 1 {
				t.Errorf("%d originates", n)
			}
		})
	}
}

// The caller hangs up while the originate is in flight: the call ends
// there; no later block runs for a caller who is gone, the bridge is
// destroyed and the record deleted.
func TestCallerHangupDuringOriginate(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.fake.Intercept(delayRequest("POST", "/channels/create", 300*time.Millisecond))
	h.caller("c1", "xfer")
	h.req("POST", "/channels/create") // arrived, not yet answered
	h.fake.Hangup("c1", 16)
	h.ended("c1")
	h.clean("c1")
	if m := h.medias("c1"); len(m) != 0 {
		t.Errorf("blocks ran for a caller who hung up during the originate: played %v", m)
	}
	if n := h.count("POST", "/channels/c1/continue"); n != 0 {
		t.Errorf("caller who hung up sent to the fallback")
	}
}

// The caller hangs up while the far end rings: the leg is hung up at once,
// the bridge destroyed, the record deleted.
func TestCallerHangupRinging(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "xfer")
	leg, br := h.leg()
	h.fake.DialStatus(leg, "RINGING")
	h.fake.Hangup("c1", 16)
	h.legDropped("c1", leg, br)
}

// Answered, not yet bridged (addChannel in flight), the caller hangs up:
// no branch runs, the leg is hung up, the bridge destroyed.
func TestCallerHangupAnsweredNotBridged(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.fake.Intercept(delayAddChannel(300 * time.Millisecond))
	h.caller("c1", "xfer")
	leg, br := h.leg()
	h.fake.Answer(leg)
	h.req("POST", "/bridges/"+br+"/addChannel")
	h.fake.Hangup("c1", 16)
	h.req("DELETE", "/channels/"+leg)
	h.ended("c1")
	h.clean("c1")
	if m := h.medias("c1"); len(m) != 0 {
		t.Errorf("blocks ran for a caller who hung up before the bridge: played %v", m)
	}
}

// delayRequest holds every request with method and exactly path back for
// d before it is answered.
func delayRequest(method, path string, d time.Duration) aritest.Interceptor {
	return func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == method && r.Path == path {
			return 0, "", d, false
		}
		return 0, "", 0, false
	}
}

func delayAddChannel(d time.Duration) aritest.Interceptor {
	return func(r *aritest.Request) (int, string, time.Duration, bool) {
		if strings.HasSuffix(r.Path, "/addChannel") {
			return 0, "", d, false
		}
		return 0, "", 0, false
	}
}

// The caller hangs up while digits are being sent: no digit after it, the
// leg hung up, the bridge destroyed.
func TestCallerHangupDuringDTMF(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "dtmf")
	leg, br := h.leg()
	h.fake.Answer(leg)
	h.req("POST", "/channels/"+leg+"/dtmf")
	h.fake.Hangup("c1", 16)
	h.req("DELETE", "/channels/"+leg)
	h.req("DELETE", "/bridges/"+br)
	h.ended("c1")
	h.clean("c1")
	time.Sleep(250 * time.Millisecond) // the next digit's time
	if n := h.fake.Count("POST", "/channels/"+leg+"/dtmf"); n != 1 {
		t.Errorf("%d digits sent, want 1 (none after the caller hung up)", n)
	}
}

// Bridged, the caller hangs up: the leg is hung up, the bridge destroyed,
// the record deleted, no branch runs.
func TestCallerHangupBridged(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "xfer")
	leg, br := h.leg()
	h.fake.Answer(leg)
	h.req("POST", "/bridges/"+br+"/addChannel")
	h.answered("POST", "/bridges/"+br+"/addChannel")
	h.fake.Hangup("c1", 16)
	h.legDropped("c1", leg, br)
}

// The far end hangs up while addChannel is in flight: a very short call,
// not an error: Success.
func TestFarEndHangupAnsweredNotBridged(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.fake.Intercept(delayAddChannel(300 * time.Millisecond))
	h.caller("c1", "xfer")
	leg, br := h.leg()
	h.fake.Answer(leg)
	h.req("POST", "/bridges/"+br+"/addChannel")
	h.fake.Hangup(leg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// The far end hangs up during the digits: Success, with the digits sent
// so far in $.Transfer.DigitsSent.
func TestFarEndHangupDuringDTMF(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "dtmf")
	leg, _ := h.leg()
	h.fake.Answer(leg)
	h.req("POST", "/channels/"+leg+"/dtmf")
	h.answered("POST", "/channels/"+leg+"/dtmf")
	h.farEndHangsUpAfter("c1", leg, "1")
}

// ChannelDestroyed reaches the call before the leg's StasisStart: the leg
// is taken as not answered (busy), nothing is bridged, and the late
// StasisStart of a leg no call owns does not start anything.
func TestChannelDestroyedBeforeStasisStart(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "xfer")
	leg, _ := h.leg()
	h.fake.Pause()
	h.fake.Hangup(leg, 17)
	h.fake.Emit(map[string]any{"type": "StasisStart", "args": []string{transfer.LegArg, "c1"},
		"channel": map[string]any{"id": leg, "name": "PJSIP/trunk-1", "state": "Up"}})
	h.fake.Resume()
	h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
	if n := h.fake.Count("POST", "/bridges/"); n != 1 { // the create only
		t.Errorf("%d bridge POSTs, want only the create (no addChannel)", n)
	}
	h.app.mu.Lock()
	defer h.app.mu.Unlock()
	if len(h.app.owners) != 0 || len(h.app.calls) != 0 {
		t.Errorf("left registered: owners %v calls %v", h.app.owners, h.app.calls)
	}
}

// Answer and hangup in the same millisecond: the addChannel finds the leg
// gone; a very short successful transfer.
func TestAnswerAndHangupAtOnce(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "xfer")
	leg, _ := h.leg()
	h.fake.Answer(leg)
	h.fake.Hangup(leg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// An addChannel refused with 422 right after the answer (the leg moving
// out of Asterisk's holding bridge) is tried again, and the call is
// bridged. On a saturated PBX the move can outlast the quick tries: while
// the leg is still there (looked at once they are used up), the request
// goes on being tried rather than the Error branch with an answered far
// end waiting.
func TestBridgeAddRetriedAfter422(t *testing.T) {
	for _, refusals := range []int{2, 7} {
		t.Run(fmt.Sprintf("%d refusals", refusals), func(t *testing.T) {
			t.Parallel()
			h := run(t, xferFlows)
			refused := 0
			h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
				if strings.HasSuffix(r.Path, "/addChannel") && refused < refusals {
					refused++
					return 422, `{"message":"Channel not in Stasis application"}`, 0, true
				}
				return 0, "", 0, false
			})
			h.caller("c1", "xfer")
			leg, br := h.leg()
			h.fake.Answer(leg)
			for range refusals + 1 { // the last carried out
				h.req("POST", "/bridges/"+br+"/addChannel")
			}
			h.answered("POST", "/bridges/"+br+"/addChannel")
			if refusals > 4 {
				h.req("GET", "/channels/"+leg)
			}
			if m, _ := h.fake.Bridge(br); len(m) != 2 {
				t.Fatalf("bridge members %v after %d refusals; want caller and leg", m, refusals)
			}
			h.fake.Hangup(leg, 16)
			h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
		})
	}
}

// A leg that has gone (or cannot be looked at), or a caller gone, when
// the quick tries are used up is not waited for: the refusals end there.
func TestBridgeAddNotRetriedForAGoneLegOrCaller(t *testing.T) {
	for _, gone := range []string{"leg", "caller"} {
		t.Run(gone, func(t *testing.T) {
			t.Parallel()
			h := run(t, xferFlows)
			h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
				switch {
				case strings.HasSuffix(r.Path, "/addChannel"):
					return 422, `{"message":"Channel not in Stasis application"}`, 0, true
				case gone == "leg" && r.Method == "GET" && strings.HasPrefix(r.Path, "/channels/ariflow-leg-"):
					return 500, `{"message":"boom"}`, 0, true
				case gone == "caller" && r.Method == "GET" && r.Path == "/channels/c1":
					return 404, `{"message":"Channel not found"}`, 0, true
				}
				return 0, "", 0, false
			})
			h.caller("c1", "xfer")
			leg, br := h.leg()
			h.fake.Answer(leg)
			h.req("DELETE", "/channels/"+leg)
			if n := h.answeredWith("POST", "/bridges/"+br+"/addChannel", 422); n != 5 {
				t.Errorf("addChannel refused %d times; want the first and the 4 quick tries only", n)
			}
			if gone == "leg" {
				h.branchTaken("c1", mError, transfer.OutcomeError)
			}
		})
	}
}

// A made leg whose end comes with state Up and no answer before it (the
// far end answered and hung up at once) is a very short call: Success,
// not CallFailed.
func TestAnsweredAndGoneAtOnce(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "xfer")
	leg, br := h.leg()
	h.fake.Emit(map[string]any{"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing",
		"channel": map[string]any{"id": leg, "name": "PJSIP/trunk-1", "state": "Up"}})
	h.req("DELETE", "/bridges/"+br)
	h.fake.Hangup(leg, 16) // the fake's own end of it; ariflow has forgotten the leg
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// addChannel failing takes the Error branch; the leg is hung up and the
// bridge destroyed.
func TestBridgeAddFails(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if strings.HasSuffix(r.Path, "/addChannel") {
			return 500, `{"message":"boom"}`, 0, true
		}
		return 0, "", 0, false
	})
	h.caller("c1", "xfer")
	leg, br := h.leg()
	h.fake.Answer(leg)
	h.req("DELETE", "/channels/"+leg)
	h.req("DELETE", "/bridges/"+br)
	h.branchTaken("c1", mError, transfer.OutcomeError)
}

// Originate refused: Error branch, nothing left behind.
func TestOriginateFails(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == "POST" && r.Path == "/channels/create" {
			return 500, `{"message":"no"}`, 0, true
		}
		return 0, "", 0, false
	})
	h.caller("c1", "xfer")
	h.branchTaken("c1", mError, transfer.OutcomeError)
}

// One POST .../dtmf per digit, in order, on a schedule of tone+gap (the
// request asks for no wait of Asterisk's own: between=1), ',' a pause of
// 750 ms; the progress is saved per digit.
func TestDTMFPacing(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "dtmf")
	leg, _ := h.leg()
	h.fake.Answer(leg)
	var got []string
	var at []time.Time
	for range 3 {
		r := h.req("POST", "/channels/"+leg+"/dtmf")
		got = append(got, r.Query.Get("dtmf"))
		at = append(at, r.At)
		if r.Query.Get("duration") != "100" || r.Query.Get("between") != "1" {
			t.Errorf("dtmf query %v", r.Query)
		}
	}
	if strings.Join(got, "") != "123" {
		t.Errorf("digits sent %v, want 1 2 3", got)
	}
	if d := at[1].Sub(at[0]); d < (flows.DefaultDTMFTone+flows.DefaultDTMFGap)*time.Millisecond-20*time.Millisecond {
		t.Errorf("1→2 after %v, want ≥ %v", d, (flows.DefaultDTMFTone+flows.DefaultDTMFGap)*time.Millisecond)
	}
	if d := at[2].Sub(at[1]); d < (flows.DefaultDTMFTone+flows.DefaultDTMFGap)*time.Millisecond+flows.PauseComma*time.Millisecond-20*time.Millisecond {
		t.Errorf("2→3 after %v, want ≥ %v (tone, gap and the ',' pause)", d, (flows.DefaultDTMFTone+flows.DefaultDTMFGap)*time.Millisecond+flows.PauseComma*time.Millisecond)
	}
	h.answered("POST", "/channels/"+leg+"/dtmf")
	eventually(t, "DigitsDone saved", func() bool {
		rec, err := h.store.Load(t.Context(), "c1")
		return err == nil && rec.Transfer != nil && rec.Transfer.DigitsDone == 4
	})
	h.farEndHangsUpAfter("c1", leg, "123")
}

// DTMFDelay holds the first digit back after the answer.
func TestDTMFDelay(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows, func(c *Config) { c.DTMFDelay = 300 * time.Millisecond })
	h.caller("c1", "dtmf")
	leg, br := h.leg()
	h.fake.Answer(leg)
	add := h.req("POST", "/bridges/"+br+"/addChannel")
	first := h.req("POST", "/channels/"+leg+"/dtmf")
	if d := first.At.Sub(add.At); d < 280*time.Millisecond {
		t.Errorf("first digit %v after the bridge, want ≥ 300ms", d)
	}
	h.fake.Hangup("c1", 16)
	h.ended("c1")
	h.clean("c1")
}

// Resume off: when the far end hangs up the caller is hung up with it and
// no branch runs; the record goes.
func TestResumeOffFarEndHangup(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "off")
	leg, br := h.leg()
	h.bridgedUntilHangup(leg, br)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	h.clean("c1")
	if m := h.medias("c1"); len(m) != 0 {
		t.Errorf("played %v with resume off", m)
	}
}

// Resume off, the transfer fails: its CallFailed branch runs.
func TestResumeOffBusy(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.caller("c1", "off")
	leg, _ := h.leg()
	h.fake.Hangup(leg, 17)
	h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
}

// Settings from attributes that are not valid take Error, nothing dialled.
func TestTransferInvalidSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, set string }{
		{"injection in number", `{shipper: "123&PJSIP/999", wait: "5", digits: "1", cid: "+4930555000", cname: "X"}`},
		{"timeout out of range", `{shipper: "+4930123456", wait: "601", digits: "1", cid: "+4930555000", cname: "X"}`},
		{"bad dtmf", `{shipper: "+4930123456", wait: "5", digits: "1x", cid: "+4930555000", cname: "X"}`},
		{"bad caller id", `{shipper: "+4930123456", wait: "5", digits: "1", cid: "abc", cname: "X"}`},
		{"bad caller name", `{shipper: "+4930123456", wait: "5", digits: "1", cid: "+4930555000", cname: "a\"b"}`},
		{"missing number", `{wait: "5", digits: "1", cid: "+4930555000", cname: "X"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			flow := `
name: dyn
version: "1"
entry: ["dyn"]
start: set
blocks:
  set: {type: SetAttributes, set: ` + tc.set + `, branches: {Next: xfer}}
  xfer:
    type: TransferToPhoneNumber
    number: $.Attributes.shipper
    timeout: $.Attributes.wait
    dtmf: $.Attributes.digits
    caller_id_number: $.Attributes.cid
    caller_id_name: $.Attributes.cname
    resume: true
    branches: {Success: ok, CallFailed: failed, Timeout: timeout, Error: error}
  ok: {type: PlayPrompt, prompts: ["sound:br-success"], branches: {Next: bye}}
  failed: {type: PlayPrompt, prompts: ["sound:br-callfailed"], branches: {Next: bye}}
  timeout: {type: PlayPrompt, prompts: ["sound:br-timeout"], branches: {Next: bye}}
  error: {type: PlayPrompt, prompts: ["sound:br-error"], branches: {Next: bye}}
  bye: {type: Disconnect}
`
			h := run(t, []string{flow})
			h.caller("c1", "dyn")
			h.branchTaken("c1", mError, transfer.OutcomeError)
			if n := h.count("POST", "/channels/create"); n != 0 {
				t.Errorf("dialled with invalid settings")
			}
		})
	}
}

// A flow's dial_policy narrows the operator's: a number the operator
// allows but the flow does not is refused, nothing is dialled, and
// $.Transfer.DeniedBy names the rule.
func TestFlowDialPolicyNarrows(t *testing.T) {
	t.Parallel()
	flow := strings.Replace(xferYAML("narrow", resumeOn), "start: xfer\n", "start: xfer\ndial_policy: {allow: {countries: [43]}}\n", 1)
	h := run(t, []string{flow})
	h.caller("c1", "narrow")
	pb := h.wantPlayed("c1", mError)
	rec, err := h.store.Load(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	tr := rec.Attributes[flows.NSTransfer]
	if tr[flows.TrStatus] != string(transfer.OutcomeDenied) || tr[flows.TrDeniedBy] != "country" {
		t.Errorf("$.Transfer %v; want Status denied by country", tr)
	}
	if n := h.count("POST", "/channels/create"); n != 0 {
		t.Errorf("dialled a number the flow's policy refuses")
	}
	h.fake.FinishPlayback(pb)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	h.clean("c1")
}

// Valid settings from attributes are used as given, normalised.
func TestTransferSettingsFromAttributes(t *testing.T) {
	t.Parallel()
	flow := `
name: dyn
version: "1"
entry: ["dyn"]
start: set
blocks:
  set: {type: SetAttributes, set: {shipper: "+4930123457", wait: "7", digits: "9", cid: "+4930555099", cname: "Dyn Amic"}, branches: {Next: xfer}}
  xfer:
    type: TransferToPhoneNumber
    number: $.Attributes.shipper
    timeout: $.Attributes.wait
    dtmf: $.Attributes.digits
    caller_id_number: $.Attributes.cid
    caller_id_name: $.Attributes.cname
    resume: true
    branches: {Success: ok, CallFailed: ok, Timeout: ok}
  ok: {type: Disconnect}
`
	h := run(t, []string{flow})
	h.caller("c1", "dyn")
	leg, _ := h.leg()
	ch, _ := h.fake.Channel(leg)
	if ch.Endpoint != "PJSIP/+4930123457@trunk" || ch.Timeout != 7 || ch.ConnectedNumber != "+4930555099" || ch.ConnectedName != "Dyn Amic" {
		t.Errorf("leg %+v", ch)
	}
	h.fake.Hangup(leg, 19)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	h.clean("c1")
}

// legDropped asserts what a caller's hangup leaves: its leg hung up, its
// bridge destroyed, the call ended with its record gone, and no branch run
// (nothing played to a caller who is gone).
func (h *harness) legDropped(caller, leg, br string) {
	h.t.Helper()
	h.req("DELETE", "/channels/"+leg)
	h.req("DELETE", "/bridges/"+br)
	h.ended(caller)
	h.clean(caller)
	if m := h.medias(caller); len(m) != 0 {
		h.t.Errorf("played %v after the caller hung up", m)
	}
}

// farEndHangsUpAfter ends a bridged transfer from the far end and asserts
// the caller resumed at Success with $.Transfer.DigitsSent = digits, and
// that the call then ended with nothing left.
func (h *harness) farEndHangsUpAfter(caller, leg, digits string) {
	h.t.Helper()
	h.fake.Hangup(leg, 16)
	pb := h.wantPlayed(caller, mSuccess)
	rec := h.load(caller)
	if got := rec.Attributes[flows.NSTransfer][flows.TrDigitsSent]; got != digits {
		h.t.Errorf("DigitsSent = %q, want %q", got, digits)
	}
	h.fake.FinishPlayback(pb)
	h.ended(caller)
	h.clean(caller)
}

// A leg Asterisk hangs up before it was dialled (made while the app had
// no connection) is made again under a new ID, saved first; nothing had
// reached the far end.
func TestLegLostBeforeDialIsMadeAgain(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	lost := make(chan string, 1)
	first := true
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == "POST" && r.Path == "/channels/create" && first {
			first = false
			var body struct{ ChannelID string }
			_ = json.Unmarshal(r.Body, &body)
			lost <- body.ChannelID
			return 200, fmt.Sprintf(`{"id":%q,"state":"Down"}`, body.ChannelID), 0, true
		}
		return 0, "", 0, false
	})
	h.caller("c1", "xfer")
	gone := <-lost
	h.fake.Emit(map[string]any{"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing",
		"channel": map[string]any{"id": gone, "name": "PJSIP/trunk-1", "state": "Down"}})
	h.req("POST", "/channels/create") // the lost one
	leg, br := h.leg()                // made again
	if leg == gone {
		t.Fatalf("the leg was made again under the lost one's ID %s", gone)
	}
	if n := h.count("POST", "/channels/"+gone+"/dial"); n != 0 {
		t.Errorf("the lost leg was dialled")
	}
	rec, err := h.store.Load(t.Context(), "c1")
	if err != nil || rec.Outbound != leg {
		t.Errorf("record says outbound %q (%v); want the new leg %s", rec.Outbound, err, leg)
	}
	h.fake.Answer(leg)
	h.answered("POST", "/bridges/"+br+"/addChannel")
	h.fake.Hangup(leg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// Asterisk may send a made leg's StasisStart before its answer to the
// create: the call owns the leg's ID before the create leaves, so the
// event waits in the call's queue and the leg is dialled, not taken for
// lost ("made but not in the app").
func TestStasisStartBeforeCreateAnswer(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	cl := h.client()
	var passThrough atomic.Bool
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method != "POST" || r.Path != "/channels/create" || passThrough.Load() {
			return 0, "", 0, false
		}
		// Make the channel (its StasisStart goes out now), then answer
		// the app's request only a while later.
		var req ari.CreateRequest
		if err := json.Unmarshal(r.Body, &req); err != nil {
			t.Error(err)
		}
		passThrough.Store(true)
		err := cl.Create(context.Background(), req)
		passThrough.Store(false)
		if err != nil {
			t.Error(err)
		}
		return 200, `{"id":"` + req.ChannelID + `"}`, 300 * time.Millisecond, true
	})
	h.caller("c1", "xfer")
	leg, _ := h.leg() // waits for the dial
	h.fake.Answer(leg)
	h.answered("POST", "/bridges/")
	h.fake.Hangup(leg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// The far end answers while the caller's ringback request is still on its
// way: the stop goes only once the ringback is through (Asterisk carries
// out a channel's requests in the order they arrive), or the caller would
// hear the ringing tone over the call.
func TestRingbackStoppedAfterItStarted(t *testing.T) {
	t.Parallel()
	h := run(t, xferFlows)
	h.fake.Intercept(delayRequest("POST", "/channels/c1/ring", 300*time.Millisecond))
	h.caller("c1", "xfer")
	leg, br := h.leg()
	h.fake.Answer(leg)
	h.req("POST", "/bridges/"+br+"/addChannel")
	h.req("DELETE", "/channels/c1/ring")
	for _, r := range h.fake.Requests() {
		if r.Method == "POST" && r.Path == "/channels/c1/ring" && r.Status == 0 {
			t.Error("the ringback's stop left before the ringback itself was through")
		}
	}
	h.fake.Hangup(leg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}
