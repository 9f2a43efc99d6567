package transfer

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
)

// slotFakeCall is an alongFakeCall that keeps its last leg's slot from
// one transfer to the next, as the controller's call does.
type slotFakeCall struct {
	*alongFakeCall
	kept EndedSlot
}

func (c *slotFakeCall) KeepSlot(s EndedSlot) { c.kept.ReleaseLater(c, quiet); c.kept = s }
func (c *slotFakeCall) TakeSlot() EndedSlot {
	s := c.kept
	c.kept = EndedSlot{}
	return s
}

// releaseGate is a gate on Redis that lists the slots it was asked to
// release.
type releaseGate struct {
	*policy.Gate
	released []string
}

func (g *releaseGate) Release(ctx context.Context, slots ...string) error {
	g.released = append(g.released, slots...)
	return g.Gate.Release(ctx, slots...)
}

// The slot of a transfer's leg that has ended is kept by the call and
// given back by the next transfer's count, in the "dialing" write's own
// script: no release of its own between two counted transfers. A transfer
// that counts nothing (its number not gated) releases it before its leg is
// made.
func TestEndedSlotGivenBackByTheNextCount(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	p := policy.Default()
	p.Concurrent = 5
	counters := policy.NewRedisCounters(rdb, "t:")
	gate := &releaseGate{Gate: policy.NewGate(p, counters, counters)}
	call := &slotFakeCall{alongFakeCall: &alongFakeCall{fakeCall: newFakeCall(), rdb: rdb}}
	held := func() []string {
		m, _ := mr.ZMembers("t:slots:legs")
		return m
	}
	ids := map[string]int{}
	newID := func(kind string) string { ids[kind]++; return fmt.Sprintf("%s-%d", kind, ids[kind]) }
	transfer := func(leg string, target record.Target) {
		t.Helper()
		call.rec.Phase = record.PhaseFlow
		call.events = []ari.Event{
			&ari.StasisStart{Channel: ari.ChannelData{ID: leg}},
			&ari.ChannelStateChange{Channel: ari.ChannelData{ID: leg, State: "Up"}},
			destroyed(leg, 16, "Up"),
		}
		env := testEnv(newFakeARI())
		env.NewID = newID
		res, err := Run(context.Background(), call, env, gate, Plan{Resume: true, Targets: []record.Target{target}}, 0)
		if err != nil || res.Outcome != OutcomeSuccess {
			t.Fatalf("transfer to %s: %+v %v; want Success", leg, res, err)
		}
	}
	number := record.Target{Number: "+4930123456", Dial: "PJSIP/+4930123456@trunk", TimeoutS: 5}

	transfer("leg-1", number)
	if call.kept.Slot != "c1:0" || len(gate.released) > 0 || !slices.Equal(held(), []string{"c1:0"}) {
		t.Fatalf("after the first transfer: kept %q, released %q, held %q; want c1:0 kept and held, nothing released", call.kept.Slot, gate.released, held())
	}
	transfer("leg-2", number)
	if call.kept.Slot != "c1:1" || len(gate.released) > 0 || !slices.Equal(held(), []string{"c1:1"}) {
		t.Fatalf("after the second transfer: kept %q, released %q, held %q; want c1:1 only, given back by no release", call.kept.Slot, gate.released, held())
	}
	transfer("leg-3", record.Target{Number: "agent", Dial: "PJSIP/agent", TimeoutS: 5, Ungated: true})
	if call.kept.Slot != "" || !slices.Equal(gate.released, []string{"c1:1"}) || len(held()) > 0 {
		t.Errorf("after a transfer not gated: kept %q, released %q, held %q; want c1:1 released, nothing kept or held", call.kept.Slot, gate.released, held())
	}
}
