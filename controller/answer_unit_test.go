package controller

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// lateFlow sets an attribute, then transfers; with answer_on_bridge the
// caller stays unanswered until its far end is bridged.
func lateFlow(name, extra string) string {
	return strings.Replace(xferYAML(name, "    answer_on_bridge: true\n"+extra+resumeOn), "start: xfer", "start: set", 1) +
		"  set: {type: SetAttributes, set: {a: \"1\"}, branches: {Next: xfer}}\n"
}

// at is the index of the first request with method and path (-1: none).
func (h *harness) at(method, path string) int {
	for i, r := range h.fake.Requests() {
		if r.Method == method && r.Path == path {
			return i
		}
	}
	return -1
}

// answer_on_bridge: the caller's phone rings (a ring request on the
// unanswered channel) while the far end rings; the caller is answered as
// the far end is bridged, after the ring request is through and before
// the add, and no stop-ring is sent (the answer ends the ringing).
func TestAnswerOnBridge(t *testing.T) {
	t.Parallel()
	h := run(t, []string{lateFlow("late", "")})
	h.caller("c1", "late")
	leg, br := h.leg()
	h.req("POST", "/channels/c1/ring")
	if n := h.count("POST", "/channels/c1/answer"); n != 0 {
		t.Fatalf("caller answered before its far end: %d answers", n)
	}
	if rec := h.load("c1"); !rec.Unanswered || rec.Phase != record.PhaseDialing {
		t.Errorf("record while the far end rings: unanswered %v, phase %s; want unanswered, dialing", rec.Unanswered, rec.Phase)
	}
	h.fake.Answer(leg)
	h.req("POST", "/bridges/"+br+"/addChannel")
	answer, add, ring := h.at("POST", "/channels/c1/answer"), h.at("POST", "/bridges/"+br+"/addChannel"), h.at("POST", "/channels/c1/ring")
	if answer < 0 || answer > add || answer < ring {
		t.Errorf("request order: ring %d, answer %d, addChannel %d; want ring, answer, addChannel", ring, answer, add)
	}
	h.fake.Hangup(leg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
	if n := h.count("DELETE", "/channels/c1/ring"); n != 0 {
		t.Errorf("%d stop-ring requests; the answer ends the ringing", n)
	}
	if n := h.count("POST", "/channels/c1/answer"); n != 1 {
		t.Errorf("%d answers; want 1", n)
	}
}

// A transfer that fails leaves the caller unanswered; the next block that
// needs its audio (the CallFailed branch's prompt) answers it first.
func TestAnswerOnBridgeFailedNextBlockAnswers(t *testing.T) {
	t.Parallel()
	h := run(t, []string{lateFlow("late", "")})
	h.caller("c1", "late")
	leg, _ := h.leg()
	h.fake.DialStatus(leg, "BUSY")
	h.fake.Hangup(leg, 17)
	h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
	answer, play := h.at("POST", "/channels/c1/answer"), -1
	for i, r := range h.fake.Requests() {
		if r.Method == "POST" && strings.HasPrefix(r.Path, "/channels/c1/play") && play < 0 {
			play = i
		}
	}
	if answer < 0 || answer > play {
		t.Errorf("answer %d, play %d; want the caller answered before the prompt", answer, play)
	}
}

// Without the option a caller is answered before the transfer dials, also
// when blocks that only set attributes come first.
func TestAnswerBeforeTransferWithoutOption(t *testing.T) {
	t.Parallel()
	flow := strings.Replace(lateFlow("early", ""), "    answer_on_bridge: true\n", "", 1)
	h := run(t, []string{flow})
	h.caller("c1", "early")
	leg, _ := h.leg()
	if answer, create := h.at("POST", "/channels/c1/answer"), h.at("POST", "/channels/create"); answer < 0 || answer > create {
		t.Errorf("answer %d, create %d; want the caller answered before the leg is made", answer, create)
	}
	h.fake.Hangup(leg, 17)
	h.branchTaken("c1", mFailed, transfer.OutcomeCallFailed)
}

// A process taking over a transfer whose caller is not answered yet
// (answer_on_bridge) leaves it ringing, and answers it as the far end is
// bridged.
func TestAdoptAnswerOnBridgeLeavesCallerRinging(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	h.pbx("down")
	rec := adoptRecord(record.PhaseDialing, "xfer", "", 0)
	rec.Unanswered = true
	h.store.put(rec)
	h.start()
	h.req("POST", "/channels/c1/ring")
	if n := h.count("POST", "/channels/c1/answer"); n != 0 {
		t.Fatalf("adopted caller answered while its far end rings")
	}
	h.fake.Answer(adLeg)
	h.req("POST", "/bridges/"+adBr+"/addChannel")
	if answer, add := h.at("POST", "/channels/c1/answer"), h.at("POST", "/bridges/"+adBr+"/addChannel"); answer < 0 || answer > add {
		t.Errorf("answer %d, addChannel %d; want the caller answered before it is bridged", answer, add)
	}
	h.answered("POST", "/bridges/"+adBr+"/addChannel")
	h.fake.Hangup(adLeg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
	if n := h.count("DELETE", "/channels/c1/ring"); n != 0 {
		t.Errorf("%d stop-ring requests; the answer ends the ringing", n)
	}
}

// The far end answers while the ring request is still on its way: the
// answer leaves only once the ring is through, or Asterisk would take the
// ring for an answered caller's and play the ringing tone over the call.
func TestAnswerOnBridgeWaitsForTheRing(t *testing.T) {
	t.Parallel()
	const hold = 300 * time.Millisecond
	h := run(t, []string{lateFlow("late", "")})
	var mu sync.Mutex
	var ringAt, answerAt time.Time
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == "POST" && r.Path == "/channels/c1/ring":
			ringAt = time.Now()
			return 0, "", hold, false
		case r.Method == "POST" && r.Path == "/channels/c1/answer":
			answerAt = time.Now()
		}
		return 0, "", 0, false
	})
	h.caller("c1", "late")
	leg, br := h.leg()
	h.fake.Answer(leg)
	h.req("POST", "/bridges/"+br+"/addChannel")
	mu.Lock()
	if ringAt.IsZero() || answerAt.Sub(ringAt) < hold {
		t.Errorf("answer %v after the ring; want it after the ring's answer (%v)", answerAt.Sub(ringAt), hold)
	}
	mu.Unlock()
	h.fake.Hangup(leg, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// failAnswer answers the caller's first n answers itself, with code
// (aritest.Cut: the connection cut).
func failAnswer(n int, code int) aritest.Interceptor {
	var mu sync.Mutex
	return func(r *aritest.Request) (int, string, time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method != "POST" || r.Path != "/channels/c1/answer" || n == 0 {
			return 0, "", 0, false
		}
		n--
		return code, `{"message":"busy"}`, 0, true
	}
}

// A caller's answer that Asterisk does not carry out (busy; or no answer
// at all, as when a connection is held) is sent again, and the call goes
// on instead of ending in error.
func TestAnswerTriedAgain(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts})
	h.fake.Intercept(failAnswer(2, 503))
	h.caller("c1", "prompts")
	h.fake.FinishPlayback(h.wantPlayed("c1", "sound:one"))
	h.fake.FinishPlayback(h.wantPlayed("c1", "sound:two"))
	h.ended("c1")
	h.clean("c1")
	if n := h.count("POST", "/channels/c1/answer"); n != 3 {
		t.Errorf("%d answers; want 3 (two refused as busy, then one)", n)
	}
}
