package controller

import (
	"context"
	"testing"

	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// oneLegGate is a dial policy with room for one outbound leg at a time,
// and a probe that tells whether that room is free now.
func oneLegGate() (*policy.Gate, func() bool) {
	p := policy.Default()
	p.Concurrent = 1
	gate := policy.NewGate(p, policy.NewMemoryLimiter(), policy.NewMemorySlots())
	free := func() bool {
		release, err := gate.Acquire(context.Background(), policy.Leg{Slot: "probe", Caller: "+4917600000009", Number: "+4930123456"})
		if err != nil {
			return false
		}
		release()
		return true
	}
	return gate, free
}

// The slot of a transfer's leg that has ended stays with the call until
// its next block: the next transfer's count gives it back (its leg is
// admitted under a cap of one), and the prompt after it releases the
// second leg's.
func TestKeptSlotGoesAtTheNextBlock(t *testing.T) {
	t.Parallel()
	gate, free := oneLegGate()
	h := run(t, []string{twiceYAML("twice", "")}, func(c *Config) { c.Gate = gate })
	h.caller("c1", "twice")
	leg1, br := h.leg()
	h.bridgedUntilHangup(leg1, br)
	leg2 := h.made()
	if free() {
		t.Error("room for another leg while the second one rings under a cap of one")
	}
	h.bridgedUntilHangup(leg2, br)
	pb := h.wantPlayed("c1", mSuccess)
	eventually(t, "the second leg's slot released while the prompt plays", free)
	h.fake.FinishPlayback(pb)
}

// A call adopted between two blocks, after a transfer: the slot its last
// leg may still hold (the stopped process kept it for the next count) is
// released by its first block that is not a transfer.
func TestAdoptedCallReleasesTheKeptSlot(t *testing.T) {
	t.Parallel()
	gate, free := oneLegGate()
	if _, err := gate.Acquire(context.Background(), policy.Leg{Slot: transfer.Slot("c1", 0), Caller: "+4917600000001", Number: "+4930123456"}); err != nil {
		t.Fatal(err) // kept by the stopped process
	}
	h := newHarness(t, []string{twiceYAML("twice", "")}, func(c *Config) { c.Gate = gate })
	h.pbx("")
	rec := adoptRecord(record.PhaseFlow, "ok", "", 0)
	rec.Flow, rec.Transfers = "twice", 1
	h.store.put(rec)
	h.start()
	pb := h.wantPlayed("c1", mSuccess)
	eventually(t, "the kept slot released while the prompt plays", free)
	h.fake.FinishPlayback(pb)
}
