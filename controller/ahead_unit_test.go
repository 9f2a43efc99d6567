package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

func legAhead(c *Config) { c.LegAhead = true }

// aheadTalking runs twiceYAML with the leg made ahead: the first transfer
// answered and bridged, and the second's leg made while it talks (its
// create answered).
func aheadTalking(t *testing.T) (h *harness, leg1, br, ahead string) {
	t.Helper()
	h = run(t, []string{twiceYAML("ahead", "")}, legAhead)
	h.caller("c1", "ahead")
	leg1, br = h.leg()
	h.fake.Answer(leg1)
	h.req("POST", "/bridges/"+br+"/addChannel")
	ahead = h.createdID()
	h.answered("POST", "/channels/create")
	return h, leg1, br, ahead
}

// While the first of two transfers in a row talks, the second's leg is
// made, not dialled; the far end's hangup has it dialled with no create on
// the caller's way back, the record naming it "dialing" first; nothing is
// left.
func TestNextLegMadeAhead(t *testing.T) {
	t.Parallel()
	h, leg1, br, leg2 := aheadTalking(t)
	if n := h.count("POST", "/channels/"+leg2+"/dial"); n != 0 {
		t.Fatalf("the leg made ahead was dialled %d times while the first transfer talked", n)
	}
	if rec := h.load("c1"); rec.Outbound != leg1 {
		t.Errorf("record names %q while the first transfer talks; want its own leg %q only", rec.Outbound, leg1)
	}
	h.fake.Hangup(leg1, 16)
	h.req("POST", "/channels/"+leg2+"/dial")
	if rec := h.load("c1"); rec.Outbound != leg2 || rec.Phase != record.PhaseDialing {
		t.Errorf("record at the dial: phase %s outbound %q; want dialing %q", rec.Phase, rec.Outbound, leg2)
	}
	if n := h.count("POST", "/channels/create"); n != 2 {
		t.Errorf("%d creates for two transfers; want 2", n)
	}
	h.answered("POST", "/channels/"+leg2+"/dial")
	h.bridgedUntilSuccess(leg2, br)
}

// The caller hangs up while the first transfer talks: the leg made ahead
// is hung up with the call, undialled.
func TestLegMadeAheadGoesWithTheCaller(t *testing.T) {
	t.Parallel()
	h, leg1, br, leg2 := aheadTalking(t)
	h.fake.Hangup("c1", 16)
	h.req("DELETE", "/channels/"+leg2)
	h.legDropped("c1", leg1, br)
	if n := h.count("POST", "/channels/"+leg2+"/dial"); n != 0 {
		t.Errorf("the leg made ahead was dialled %d times", n)
	}
}

// aheadOtherYAML is twiceYAML with a transfer before it whose result
// ($.Transfer.Status) the second transfer shows as its caller ID name: the
// first transfer's own result changes it.
const aheadOtherYAML = `
name: other
version: "1"
entry: ["other"]
start: zero
blocks:
  zero:
    type: TransferToPhoneNumber
    number: "+4930123450"
    timeout: 5
    resume: true
    branches: {Success: first, CallFailed: first, Timeout: first, Error: first}
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
    caller_id_name: $.Transfer.Status
    branches: {Success: ok, CallFailed: failed, Timeout: failed, Error: failed}
  ok: {type: PlayPrompt, prompts: ["sound:br-success"], branches: {Next: bye}}
  failed: {type: PlayPrompt, prompts: ["sound:br-callfailed"], branches: {Next: bye}}
  bye: {type: Disconnect}
`

// The second transfer's settings resolve otherwise at its start than while
// the first talked (its caller ID name is the last transfer's result): the
// leg made ahead is hung up undialled, and the second transfer makes its
// own.
func TestLegMadeAheadForOtherSettingsGoes(t *testing.T) {
	t.Parallel()
	h := run(t, []string{aheadOtherYAML}, legAhead)
	h.caller("c1", "other")
	leg0, _ := h.leg()
	h.fake.Hangup(leg0, 17) // busy: $.Transfer.Status is CallFailed
	leg1 := h.made()
	h.fake.Answer(leg1)
	h.req("POST", "/bridges/")
	h.req("POST", "/bridges/") // the addChannel, to the bridge the first kept or its own
	ahead := h.createdID()
	h.answered("POST", "/channels/create")
	h.fake.Hangup(leg1, 16)
	leg2 := h.made()
	if leg2 == ahead {
		t.Fatal("the leg made with other settings was dialled")
	}
	h.req("DELETE", "/channels/"+ahead)
	h.fake.Answer(leg2)
	h.fake.Hangup(leg2, 16)
	h.branchTaken("c1", mSuccess, transfer.OutcomeSuccess)
}

// The websocket drops while the first transfer talks, the next leg made
// ahead: after the reconnect the call asks Asterisk about that leg (its
// events may have gone with the old socket), keeps it, owned (the
// reconcile does not take it for an orphan), and the second transfer
// dials it.
func TestLegMadeAheadKeptAcrossAReconnect(t *testing.T) {
	t.Parallel()
	h, leg1, br, leg2 := aheadTalking(t)
	reconciles := h.count("GET", "/bridges")
	h.fake.DropWebsocket()
	h.req("GET", "/channels/"+leg2) // the check after the reconnect
	eventually(t, "the reconcile after the reconnect", func() bool { return h.count("GET", "/bridges") > reconciles })
	h.fake.Hangup(leg1, 16)
	h.req("POST", "/channels/"+leg2+"/dial")
	if n := h.count("DELETE", "/channels/"+leg2); n != 0 {
		t.Errorf("the leg made ahead was hung up %d times across the reconnect", n)
	}
	if n := h.count("POST", "/channels/create"); n != 2 {
		t.Errorf("%d creates for two transfers; want 2", n)
	}
	h.answered("POST", "/channels/"+leg2+"/dial")
	h.bridgedUntilSuccess(leg2, br)
}

// A transfer after a prompt writes its position before it starts: a
// process taking over before the transfer's own record would otherwise
// find the prompt's and play it again from its start (chaos run AN).
// From one transfer to the next no write is made (TestNextLegMadeAhead).
func TestTransferAfterPromptSavesItsPlace(t *testing.T) {
	t.Parallel()
	h := run(t, []string{`
name: after
version: "1"
entry: ["after"]
start: hello
blocks:
  hello: {type: PlayPrompt, prompts: ["sound:hello-world"], branches: {Next: xfer}}
  xfer:
    type: TransferToPhoneNumber
    number: "+4930123456"
    timeout: 5
    branches: {Success: ok, CallFailed: failed, Timeout: failed, Error: failed}
  ok: {type: PlayPrompt, prompts: ["sound:br-success"], branches: {Next: bye}}
  failed: {type: PlayPrompt, prompts: ["sound:br-callfailed"], branches: {Next: bye}}
  bye: {type: Disconnect}
`})
	// The create is held: the transfer's own record comes only after it.
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == "POST" && r.Path == "/channels/create" {
			return 0, "", 300 * time.Millisecond, false
		}
		return 0, "", 0, false
	})
	h.caller("c1", "after")
	h.fake.FinishPlayback(h.wantPlayed("c1", "sound:hello-world"))
	leg := h.createdID()
	if rec := h.load("c1"); rec.Block != "xfer" {
		t.Errorf("stored record names %q as the transfer starts; want xfer, not the prompt already played", rec.Block)
	}
	br := strings.TrimPrefix(h.req("POST", "/bridges/").Path, "/bridges/")
	h.req("POST", "/channels/"+leg+"/dial")
	h.answered("POST", "/channels/"+leg+"/dial")
	h.bridgedUntilSuccess(leg, br)
}
