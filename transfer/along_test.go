package transfer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
)

// alongFakeCall is a fakeCall whose "dialing" write carries the policy's
// count, run on a miniredis as the store runs it: inside the write's
// script, the write made only when the count admits the leg.
type alongFakeCall struct {
	*fakeCall
	rdb    *redis.Client
	writes int // writes that carried a count
}

func (c *alongFakeCall) CountsAlong() bool { return true }

func (c *alongFakeCall) SetPhaseAlong(ctx context.Context, p record.Phase, along *policy.Along) error {
	c.writes++
	if along.Lua != "" {
		sc := redis.NewScript("local function part(KEYS, ARGV)\n" + along.Lua + "\nend\nreturn part(KEYS, ARGV)")
		n, err := sc.Run(ctx, c.rdb, along.Keys, along.Args...).Int64()
		if err != nil {
			return err
		}
		if n != 0 {
			return along.Verdict(n)
		}
	}
	return c.SetPhase(ctx, p)
}

// With the policy's counters on Redis, a leg is counted by its "dialing"
// write, not by a round trip of its own: admitted, the record counts it
// and names its slot, which is given back when the leg ends; refused (the
// caller's rate used up), the leg is hung up undialled, nothing is
// written, and the record neither counts it nor says "dialing".
func TestDialingWriteCarriesTheCount(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	p := policy.Default()
	p.PerCaller = policy.Rate{Count: 1, Window: time.Hour}
	p.Concurrent = 5
	counters := policy.NewRedisCounters(rdb, "t:")
	gate := policy.NewGate(p, counters, counters)
	call := &alongFakeCall{fakeCall: newFakeCall(), rdb: rdb}
	plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4915123456789", Dial: "PJSIP/+4915123456789@trunk", TimeoutS: 5}}}

	a := newFakeARI()
	call.events = []ari.Event{
		&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}},
		&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}},
		destroyed("leg-1", 16, "Up"),
	}
	res, err := Run(context.Background(), call, testEnv(a), gate, plan, 0)
	if err != nil || res.Outcome != OutcomeSuccess {
		t.Fatalf("first transfer: %+v %v; want Success", res, err)
	}
	if call.writes != 1 || call.rec.Transfers != 1 || !slices.Contains(a.requests(), "dial leg-1 5s") {
		t.Errorf("first transfer: %d counted writes, %d transfers, requests %q; want 1, 1 and the dial", call.writes, call.rec.Transfers, a.requests())
	}
	if mr.Exists("t:slots:legs") {
		if m, _ := mr.ZMembers("t:slots:legs"); len(m) > 0 {
			t.Errorf("slots held after the leg ended: %q", m)
		}
	}

	// The same caller again: its rate (1 an hour) is used up.
	a = newFakeARI()
	call.events = []ari.Event{&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}}}
	phases := len(call.phases)
	call.rec.Phase = record.PhaseFlow
	res, err = Run(context.Background(), call, testEnv(a), gate, plan, 0)
	if err != nil || res.Outcome != OutcomeDenied || res.DeniedBy != policy.RuleRatePerCaller {
		t.Fatalf("second transfer: %+v %v; want Denied by %s", res, err, policy.RuleRatePerCaller)
	}
	reqs := a.requests()
	if slices.Contains(reqs, "dial leg-1 5s") || !slices.Contains(reqs, "hangup leg-1") {
		t.Errorf("refused leg: requests %q; want it hung up undialled", reqs)
	}
	if call.writes != 2 || call.rec.Transfers != 1 || slices.Contains(call.phases[phases:], record.PhaseDialing) {
		t.Errorf("refused leg: %d counted writes, %d transfers, phases written %q; want 2, 1 and no dialing", call.writes, call.rec.Transfers, call.phases[phases:])
	}
}

// A reconnect while the leg entered the app: its StasisStart went out on
// the socket being replaced, and the call passes the reconnect's word on
// (PathRenewed). The transfer dials at once instead of waiting InAppWait;
// a leg not in the app yet refuses (409), and its StasisStart, still to
// come, is waited for and the leg dialled then.
func TestPathRenewedDialsTheLegAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		notInApp  bool // the first dial is refused: not in the app yet
		wantDials int
	}{{"in the app", false, 1}, {"not yet in the app", true, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			call, a := newFakeCall(), newFakeARI()
			env := testEnv(a)
			env.InAppWait = time.Hour // waited out, the test would not end
			if tc.notInApp {
				a.failOnce["dial"] = []error{&ari.StatusError{Code: 409, Status: "409 Conflict"}}
			}
			call.events = []ari.Event{&PathRenewed{Leg: "leg-1"}}
			if tc.notInApp {
				call.events = append(call.events, &ari.StasisStart{Channel: ari.ChannelData{ID: "leg-1"}})
			}
			call.events = append(call.events,
				&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-1", State: "Up"}},
				destroyed("leg-1", 16, "Up"))
			plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930000001", Dial: "PJSIP/+4930000001@trunk", TimeoutS: 5}}}
			res, err := Run(context.Background(), call, env, &fakeGate{}, plan, 0)
			if err != nil || res.Outcome != OutcomeSuccess {
				t.Fatalf("%+v %v; want Success", res, err)
			}
			dials := 0
			for _, r := range a.requests() {
				if r == "dial leg-1 5s" {
					dials++
				}
			}
			if dials != tc.wantDials {
				t.Errorf("%d dials, want %d: %q", dials, tc.wantDials, a.requests())
			}
		})
	}
}
