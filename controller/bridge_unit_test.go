package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// twiceYAML is a flow of two transfers in a row, the second with extra
// settings, then a prompt.
func twiceYAML(name, second string) string {
	return fmt.Sprintf(`
name: %[1]s
version: "1"
entry: ["%[1]s"]
start: first
blocks:
  first:
    type: TransferToPhoneNumber
    number: "+4930123456"
    timeout: 5
    resume: true
    branches: {Success: second, CallFailed: failed, Timeout: failed, Error: failed}
  second:
    type: TransferToPhoneNumber
    number: "+4930123457"
    timeout: 5
    resume: true
%[2]s
    branches: {Success: ok, CallFailed: failed, Timeout: failed, Error: failed}
  ok: {type: PlayPrompt, prompts: ["sound:br-success"], branches: {Next: bye}}
  failed: {type: PlayPrompt, prompts: ["sound:br-callfailed"], branches: {Next: bye}}
  bye: {type: Disconnect}
`, name, second)
}

// made waits for the next leg's create and its dial, and returns its ID.
func (h *harness) made() string {
	h.t.Helper()
	id := h.createdID()
	h.req("POST", "/channels/"+id+"/dial")
	h.answered("POST", "/channels/"+id+"/dial")
	return id
}

// bridgesMade counts the bridges created.
func (h *harness) bridgesMade() int {
	n := 0
	for _, r := range h.fake.Requests() {
		if r.Method == "POST" && strings.HasPrefix(r.Path, "/bridges/") && !strings.Contains(strings.TrimPrefix(r.Path, "/bridges/"), "/") {
			n++
		}
	}
	return n
}

// The second of two transfers in a row takes the first one's bridge with
// the caller still in it: no bridge made or destroyed between them, only
// the new leg added; the caller rings meanwhile; the bridge goes once,
// before the prompt that follows, and nothing is left.
func TestNextTransferTakesTheKeptBridge(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twiceYAML("twice", "")})
	h.caller("c1", "twice")
	leg1, br := h.leg()
	h.bridgedUntilHangup(leg1, br)

	leg2 := h.made()
	if rec := h.load("c1"); rec.Bridge != br || rec.Outbound != leg2 || rec.Phase != record.PhaseDialing {
		t.Errorf("record while the second leg rings: phase %s outbound %q bridge %q, want the kept bridge %q", rec.Phase, rec.Outbound, rec.Bridge, br)
	}
	if n := h.count("DELETE", "/bridges/"+br); n != 0 {
		t.Errorf("kept bridge destroyed %d times before the second transfer ended", n)
	}
	h.req("POST", "/channels/c1/ring") // the first transfer's
	h.req("POST", "/channels/c1/ring") // the second's, the caller in the kept bridge
	h.fake.Answer(leg2)
	r := h.req("POST", "/bridges/"+br+"/addChannel")
	if got := r.Query.Get("channel"); got != leg2 {
		t.Errorf("second addChannel channel=%q, want only the new leg %q", got, leg2)
	}
	h.answered("POST", "/bridges/"+br+"/addChannel")
	if m, _ := h.fake.Bridge(br); len(m) != 2 {
		t.Errorf("bridge members %v, want the caller and the second leg", m)
	}
	h.fake.Hangup(leg2, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
	if n := h.bridgesMade(); n != 1 {
		t.Errorf("%d bridges made for two transfers in a row, want 1", n)
	}
	if n := h.count("DELETE", "/bridges/"+br); n != 1 {
		t.Errorf("bridge destroyed %d times, want 1", n)
	}
}

// A kept bridge of another kind (the second transfer has a return key,
// whose bridge reports the caller's keys) goes, and the second transfer
// makes its own.
func TestKeptBridgeOfAnotherKindGoes(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twiceYAML("twice", "    return_key: \"*#\"")})
	h.caller("c1", "twice")
	leg1, br1 := h.leg()
	h.bridgedUntilHangup(leg1, br1)

	leg2, br2 := h.leg()
	if br2 == br1 {
		t.Fatalf("a bridge without key events taken by a transfer with a return key")
	}
	h.req("DELETE", "/bridges/"+br1)
	h.bridgedUntilSuccess(leg2, br2)
}

// The caller hangs up between two transfers, the bridge kept: it goes
// with the call.
func TestKeptBridgeGoesWithTheCaller(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twiceYAML("twice", "")})
	h.caller("c1", "twice")
	leg1, br := h.leg()
	h.bridgedUntilHangup(leg1, br)
	leg2 := h.made()
	h.fake.Hangup("c1", 16)
	h.legDropped("c1", leg2, br)
}

// A process taking over between two transfers finds the record naming the
// bridge the first one kept, the caller in it. How it was made is not
// known there: the second transfer lets it go and makes its own, and
// nothing is left.
func TestAdoptedKeptBridgeGoes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []string{twiceYAML("xfer", "")})
	h.pbx("gone") // the caller, and the bridge adBr
	if err := h.client().AddToBridge(context.Background(), adBr, "c1"); err != nil {
		t.Fatal(err)
	}
	rec := adoptRecord(record.PhaseFlow, "second", "", 0)
	rec.Bridge = adBr
	h.store.put(rec)
	h.req("POST", "/bridges/") // the set-up's own
	h.start()
	leg, br := h.leg()
	if br == adBr {
		t.Fatal("the adopted kept bridge was taken without knowing its kind")
	}
	h.req("DELETE", "/bridges/"+adBr)
	h.bridgedUntilSuccess(leg, br)
}

// The kept bridge let go for a prompt: the caller is taken out of it
// first, and the prompt goes only once that removal is answered (Asterisk
// answers a bridge's destroy before the caller has left it, and a
// playback sent meanwhile is lost with the bridge).
func TestKeptBridgeLetGoBeforeThePrompt(t *testing.T) {
	t.Parallel()
	const hold = 300 * time.Millisecond
	h := run(t, xferFlows)
	var mu sync.Mutex
	var removedAt, playAt time.Time
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == "POST" && strings.HasSuffix(r.Path, "/removeChannel"):
			removedAt = time.Now()
			return 0, "", hold, false
		case r.Method == "POST" && strings.HasPrefix(r.Path, "/channels/c1/play") && playAt.IsZero():
			playAt = time.Now()
		}
		return 0, "", 0, false
	})
	h.caller("c1", "xfer")
	leg, br := h.leg()
	h.bridgedUntilSuccess(leg, br)
	mu.Lock()
	defer mu.Unlock()
	if removedAt.IsZero() || playAt.Sub(removedAt) < hold {
		t.Errorf("prompt %v after the caller's removal from the kept bridge; want after its answer (%v)", playAt.Sub(removedAt), hold)
	}
	if rm, del := h.at("POST", "/bridges/"+br+"/removeChannel"), h.at("DELETE", "/bridges/"+br); rm < 0 || del < rm {
		t.Errorf("removeChannel %d, destroy %d; want the caller taken out before the destroy", rm, del)
	}
}
