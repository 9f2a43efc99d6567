package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/record"
)

// Two flows as an Amazon Connect import writes them: the main flow hands
// the caller to the helpdesk flow (TransferToFlow), which asks up to twice
// (Loop around a GetCustomerInput), then sets a working queue and
// transfers to it.
var jumpFlows = []string{`
name: main
version: "1"
entry: ["main"]
start: greet
blocks:
  greet: {type: PlayPrompt, prompts: ["sound:dir-welcome"], branches: {Next: to_help}}
  to_help: {type: TransferToFlow, flow: helpdesk, branches: {Error: sorry}}
  sorry: {type: PlayPrompt, prompts: ["sound:sorry"], branches: {Next: bye}}
  bye: {type: Disconnect}
`, `
name: helpdesk
version: "7"
entry: ["helpdesk"]
start: tries
blocks:
  tries: {type: Loop, count: 2, branches: {ContinueLooping: ask, DoneLooping: queue}}
  ask:
    type: GetCustomerInput
    prompts: ["sound:vm-enter-num-to-call"]
    values: ["1"]
    timeout: 1
    branches: {"1": bye, NoMatch: tries, Timeout: tries}
  queue:
    type: SetWorkingQueue
    queue: Support
    context: queues
    extension: support
    priority: 3
    branches: {Next: announce}
  announce: {type: SetAttributes, set: {said: "You wait in $.Queue.Name"}, branches: {Next: xfer}}
  xfer: {type: TransferToQueue, branches: {Error: bye}}
  bye: {type: Disconnect}
`}

func TestTransferToFlowLoopAndWorkingQueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, jumpFlows)
	h.shortInputTimeouts()
	h.start()
	h.caller("c1", "main")
	h.fake.FinishPlayback(h.wantPlayed("c1", "sound:dir-welcome"))
	// In the helpdesk flow: the record names it and the block.
	pb := h.wantPlayed("c1", "sound:vm-enter-num-to-call")
	rec, err := h.store.Load(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Flow != "helpdesk" || rec.Version != "7" || rec.Block != "ask" || rec.Loops["helpdesk/tries"] != 1 {
		t.Errorf("record while asking: flow %s v%s block %s loops %v", rec.Flow, rec.Version, rec.Block, rec.Loops)
	}
	h.fake.FinishPlayback(pb) // no answer: Timeout, the loop asks again
	h.fake.FinishPlayback(h.wantPlayed("c1", "sound:vm-enter-num-to-call"))
	// Asked twice: DoneLooping, the working queue, the transfer.
	r := h.req("POST", "/channels/c1/continue")
	if r.Query.Get("context") != "queues" || r.Query.Get("extension") != "support" || r.Query.Get("priority") != "3" {
		t.Errorf("continue %v", r.Query)
	}
	h.ended("c1")
	if n := len(h.medias("c1")); n != 3 {
		t.Errorf("%d prompts played, want 3: %v", n, h.medias("c1"))
	}
	if h.count("DELETE", "/channels/c1") != 0 {
		t.Error("caller in the queue hung up")
	}
	if h.store.has("c1") {
		t.Error("record left")
	}
}

// The loop counts, the working queue and the flow the call moved to are in
// the record: a process taking the call over goes on in that flow with the
// count reached, and asks only once more.
func TestAdoptInOtherFlowWithLoopCount(t *testing.T) {
	t.Parallel()
	h := newHarness(t, jumpFlows)
	h.shortInputTimeouts()
	h.caller("c1", "main")
	now := time.Now()
	h.store.put(&record.Call{CallID: "c1", Channel: "PJSIP/pbx-1", Flow: "helpdesk", Version: "7", Block: "ask", Phase: record.PhaseFlow,
		Attributes: flows.Attributes{}, Loops: map[string]int{"helpdesk/tries": 2}, Owner: "dead-process", Epoch: 1,
		Started: now.Add(-time.Minute), Updated: now})
	h.start()
	h.fake.FinishPlayback(h.wantPlayed("c1", "sound:vm-enter-num-to-call"))
	// The count was 2 of 2: DoneLooping, the queue.
	if r := h.req("POST", "/channels/c1/continue"); r.Query.Get("context") != "queues" {
		t.Errorf("continue %v", r.Query)
	}
	h.ended("c1")
	if got := h.medias("c1"); len(got) != 1 {
		t.Errorf("prompts after the takeover %v, want the one question", got)
	}
}

// TransferToQueue before any SetWorkingQueue takes Error; a flow no longer
// loaded (a reload dropped it) takes the TransferToFlow's Error.
func TestTransferErrors(t *testing.T) {
	t.Parallel()
	flows2 := []string{strings.Replace(jumpFlows[0], "flow: helpdesk", "flow: gone", 1), `
name: gone
version: "1"
entry: ["gone", "noqueue"]
start: xfer
blocks:
  xfer: {type: TransferToQueue, branches: {Error: bye}}
  bye: {type: Disconnect}
`}
	h := newHarness(t, flows2)
	h.start()
	h.caller("c1", "noqueue")
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	if h.count("POST", "/channels/c1/continue") != 0 {
		t.Error("continued without a working queue")
	}
	// A call in main while a reload drops the flow it continues in.
	h.caller("c2", "main")
	pb := h.wantPlayed("c2", "sound:dir-welcome")
	h.app.SetFlows(loadFlows(t, "name: other\nversion: \"1\"\nentry: [\"other\"]\nstart: bye\nblocks:\n  bye: {type: Disconnect}\n"))
	h.fake.FinishPlayback(pb)
	h.fake.FinishPlayback(h.wantPlayed("c2", "sound:sorry"))
	h.req("DELETE", "/channels/c2")
	h.ended("c2")
}

// The working queue goes with the call into another flow: set in one,
// transferred to in the next, as Connect flows hand callers over.
func TestWorkingQueueAcrossFlows(t *testing.T) {
	t.Parallel()
	h := run(t, []string{`
name: front
version: "1"
entry: ["front"]
start: queue
blocks:
  queue: {type: SetWorkingQueue, queue: Returns, context: queues, extension: returns, branches: {Next: on}}
  on: {type: TransferToFlow, flow: back}
`, `
name: back
version: "1"
entry: ["back"]
start: xfer
blocks:
  xfer: {type: TransferToQueue}
`})
	h.caller("c1", "front")
	if r := h.req("POST", "/channels/c1/continue"); r.Query.Get("context") != "queues" || r.Query.Get("extension") != "returns" {
		t.Errorf("continue %v", r.Query)
	}
	h.ended("c1")
}
