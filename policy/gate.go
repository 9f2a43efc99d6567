package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// DefaultLegTTL is how long a concurrency slot is held at most when it is
// never released (the process died): longer than any sane call, shorter
// than a day of lost capacity.
const DefaultLegTTL = 4 * time.Hour

// Gate decides whether one outbound leg may be started: the number, the
// call's transfer count, the rate limits and the concurrency cap, in that
// order. The controller calls Acquire before originating anything and the
// release it gets once the leg is gone.
type Gate struct {
	policy  *Policy
	limiter Limiter
	slots   Slots
	// LegTTL bounds a slot that is never released; DefaultLegTTL if 0.
	LegTTL time.Duration
}

// NewGate combines a policy with the counters every instance shares
// (NewRedisCounters for both, or NewMemoryCounters for one process; a
// Limiter that is also an Admitter counts each leg in one step).
func NewGate(p *Policy, l Limiter, s Slots) *Gate {
	return &Gate{policy: p, limiter: l, slots: s}
}

// Policy is the policy the gate applies.
func (g *Gate) Policy() *Policy { return g.policy }

// WithPolicy returns a gate sharing g's counters that applies p, e.g.
// g.Policy().Narrow(flowPolicy) for one flow.
func (g *Gate) WithPolicy(p *Policy) *Gate {
	out := *g
	out.policy = p
	return &out
}

// Leg is an outbound leg asking to be dialled.
type Leg struct {
	// Slot names the leg's concurrency slot so that another process (one
	// that took the call over) can Release it; "" picks a random name.
	Slot string
	// Caller is the caller's number as presented ("" for anonymous, who
	// then share one budget): the caller's to choose.
	Caller string
	// Entry is the number the caller dialled, which chose the flow: one of
	// the operator's numbers, whatever the caller presents.
	Entry string
	// Number is the E.164 number to dial.
	Number string
	// TransfersSoFar is how many outbound legs the call made before this.
	TransfersSoFar int
	// Ended is the slot of the call's last leg, which has ended: it is
	// given back before the cap is checked, by counters that admit in one
	// step (Admitter, CountAlong) in the same step, so that the count need
	// not wait for its release ("": none).
	Ended string
}

// Acquire admits one outbound leg. Refused: a *Denied (errors.Is
// ErrDenied) naming the rule; nothing was counted against the concurrency
// cap. Any other error means the counters could not be reached, and the
// leg must not be dialled either (the gate fails closed). On success,
// release must be called once the leg has ended (or failed to start); it
// is safe to call more than once.
func (g *Gate) Acquire(ctx context.Context, leg Leg) (release func(), err error) {
	if err := g.Check(leg); err != nil {
		return nil, err
	}
	return g.Count(ctx, leg)
}

// Check applies the rules that count nothing: the number and the call's
// transfers so far. It costs no round trip; a refusal is a *Denied.
func (g *Gate) Check(leg Leg) error {
	if err := g.policy.CheckNumber(leg.Number); err != nil {
		return err
	}
	return g.policy.CheckTransfers(leg.TransfersSoFar)
}

// Count is Acquire without Check: the leg counted against the rates and
// the concurrency cap, as Acquire describes.
func (g *Gate) Count(ctx context.Context, leg Leg) (release func(), err error) {
	p := g.policy
	id := leg.Slot
	if id == "" {
		id = newLegID()
	}
	ttl := g.legTTL()
	if a, ok := g.limiter.(Admitter); ok {
		return g.admit(ctx, a, leg, id, ttl)
	}
	release = func() {}
	if p.Concurrent > 0 {
		if leg.Ended != "" {
			if err := g.slots.Release(ctx, "legs", leg.Ended); err != nil {
				return nil, fmt.Errorf("dial policy: %w", err)
			}
		}
		ok, err := g.slots.Acquire(ctx, "legs", id, p.Concurrent, ttl)
		if err != nil {
			return nil, fmt.Errorf("dial policy: %w", err)
		}
		if !ok {
			return nil, deny(RuleConcurrent, "%d outbound legs are up, at most %d allowed", p.Concurrent, p.Concurrent)
		}
		release = g.releaser(id)
	}
	if err := g.checkRates(ctx, leg.Caller, leg.Entry); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// admit is Acquire's counting in one step, in the same order: the slot's
// room, then the rates narrowest first, then the slot. With nothing to
// count it costs no round trip.
func (g *Gate) admit(ctx context.Context, a Admitter, leg Leg, id string, ttl time.Duration) (func(), error) {
	req, d := g.admission(leg, id, ttl)
	if len(req.Rates) == 0 && req.Max == 0 {
		return func() {}, nil
	}
	v, err := a.Admit(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("dial policy: %w", err)
	}
	if err := d.deny(v); err != nil {
		return nil, err
	}
	if req.Max > 0 {
		return g.releaser(id), nil
	}
	return func() {}, nil
}

// admission is what counting leg asks of the counters, and how their
// verdict reads.
func (g *Gate) admission(leg Leg, id string, ttl time.Duration) (Admission, denials) {
	p := g.policy
	var req Admission
	var d denials
	add := func(key string, r Rate, rule, what string) {
		if r.Count > 0 {
			req.Rates = append(req.Rates, RateKey{Key: key, Limit: r.Count, Window: r.Window})
			d.rules, d.whats = append(d.rules, rule), append(d.whats, what)
		}
	}
	add("caller:"+callerKey(leg.Caller), p.PerCaller, RuleRatePerCaller, fmt.Sprintf("caller %q started more than %s outbound legs", leg.Caller, p.PerCaller))
	add("entry:"+callerKey(leg.Entry), p.PerEntry, RuleRatePerEntry, fmt.Sprintf("calls to entry %q started more than %s outbound legs", leg.Entry, p.PerEntry))
	add("global", p.Global, RuleRateGlobal, fmt.Sprintf("more than %s outbound legs were started", p.Global))
	if p.Concurrent > 0 {
		req.SlotKey, req.SlotID, req.Max, req.TTL = "legs", id, p.Concurrent, ttl
		req.Ended = leg.Ended
		d.concurrent = p.Concurrent
	}
	return req, d
}

// denials turns a Verdict into the rule that refused the leg.
type denials struct {
	rules, whats []string
	concurrent   int
}

func (d denials) deny(v Verdict) error {
	switch {
	case v.SlotFull:
		return deny(RuleConcurrent, "%d outbound legs are up, at most %d allowed", d.concurrent, d.concurrent)
	case v.Rate >= 0:
		return deny(d.rules[v.Rate], "%s", d.whats[v.Rate])
	}
	return nil
}

// Along is a leg's count as part of another Redis script: a record write
// that must happen only for an admitted leg runs it first, in the same
// script, and so costs one round trip where a count and then the write
// cost two. Lua is a function body over its own KEYS and ARGV; it returns
// 0 when the leg is admitted (and counted), anything else when refused
// (nothing counted against the cap). Verdict reads that answer. Lua empty:
// nothing to count.
type Along struct {
	Lua  string
	Keys []string
	Args []any
	d    denials
	// then: the next leg's verdicts (CountAlongThen).
	then denials
}

// Verdict is Count's error for what Along's Lua returned: nil when
// admitted, else a *Denied naming the rule. The slot, if any, is the
// leg's Slot: give it back with Release.
func (a *Along) Verdict(n int64) error { return a.d.deny(verdictOf(n)) }

// ThenVerdict is the *Denied of the next leg of CountAlongThen, from the
// n of the Lua's {n} answer (0: not known, the write was found made).
func (a *Along) ThenVerdict(n int64) error {
	if n == 0 {
		return fmt.Errorf("%w: the next leg was not counted (its verdict went with a lost answer)", ErrDenied)
	}
	return a.then.deny(verdictOf(n))
}

// admitThenLua counts a leg and then the next one, each by admitLua over
// its own share of KEYS and ARGV (ARGV 1 and 2: the first's number of
// keys and of arguments). The first refused, its answer, and the next is
// not counted; the next refused, {its answer}: the first stays counted.
const admitThenLua = `
local function admit(KEYS, ARGV)
` + admitLua + `
end
local k, a = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = admit({unpack(KEYS, 1, k)}, {unpack(ARGV, 3, 2 + a)})
if n ~= 0 then return n end
n = admit({unpack(KEYS, k + 1)}, {unpack(ARGV, 3 + a)})
if n ~= 0 then return {n} end
return 0`

// CountAlongThen is CountAlong for leg and next, a leg to be dialled
// after it (a transfer the PBX dials once leg's has ended), in one
// script: leg first, so that a leg of its own is never refused for the
// next one's count. Its Lua answers as CountAlong's for leg, and {n} when
// only next was refused (ThenVerdict(n) says why): a write that carries
// it is then made without next (store.Part.Else). next nil: CountAlong.
func (g *Gate) CountAlongThen(leg Leg, next *Leg) (a *Along, ok bool) {
	rc, ok := g.limiter.(*RedisCounters)
	if !ok || next == nil {
		return g.CountAlong(leg)
	}
	then, dt := g.admission(*next, next.Slot, g.legTTL())
	if len(then.Rates) == 0 && then.Max == 0 {
		return g.CountAlong(leg)
	}
	first, d := g.admission(leg, leg.Slot, g.legTTL())
	k1, a1 := rc.admission(first)
	k2, a2 := rc.admission(then)
	return &Along{Lua: admitThenLua, Keys: append(k1, k2...), Args: append(append([]any{len(k1), len(a1)}, a1...), a2...),
		d: d, then: dt}, true
}

// legTTL is how long a leg's slot is held at most.
func (g *Gate) legTTL() time.Duration {
	if g.LegTTL > 0 {
		return g.LegTTL
	}
	return DefaultLegTTL
}

// CountAlong is Count as part of a record's write, for counters on Redis;
// ok is false for counters that are not (count with Count). The leg's
// Slot names its concurrency slot and must be set.
func (g *Gate) CountAlong(leg Leg) (a *Along, ok bool) {
	rc, ok := g.limiter.(*RedisCounters)
	if !ok {
		return nil, false
	}
	req, d := g.admission(leg, leg.Slot, g.legTTL())
	a = &Along{d: d}
	if len(req.Rates) > 0 || req.Max > 0 {
		a.Lua = admitLua
		a.Keys, a.Args = rc.admission(req)
	}
	return a, true
}

// releaser gives back slot id once, when the leg has ended.
func (g *Gate) releaser(id string) func() {
	done := false
	return func() {
		if done {
			return
		}
		done = true
		// The call's context may be gone by now; the slot must still go.
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = g.slots.Release(rctx, "legs", id) // else it lapses after LegTTL
	}
}

// Release gives back the concurrency slots named (one round trip for
// all), taken by Acquire in this process or another: a process that took
// a call over releases the slot of the leg it adopted once that leg has
// ended. Empty names are skipped.
func (g *Gate) Release(ctx context.Context, slots ...string) error {
	if g.policy.Concurrent <= 0 {
		return nil
	}
	slots = slices.DeleteFunc(slices.Clone(slots), func(s string) bool { return s == "" })
	if len(slots) == 0 {
		return nil
	}
	if err := g.slots.Release(ctx, "legs", slots...); err != nil {
		return fmt.Errorf("dial policy: %w", err)
	}
	return nil
}

// checkRates counts the leg against each rate, the narrowest first; a leg
// refused by one rate is not counted by the wider ones, so that one
// caller retrying in a loop does not use up its entry's or everyone's
// budget.
func (g *Gate) checkRates(ctx context.Context, callerNumber, entry string) error {
	p := g.policy
	if r := p.PerCaller; r.Count > 0 {
		ok, err := g.limiter.Allow(ctx, "caller:"+callerKey(callerNumber), r.Count, r.Window)
		if err != nil {
			return fmt.Errorf("dial policy: %w", err)
		}
		if !ok {
			return deny(RuleRatePerCaller, "caller %q started more than %s outbound legs", callerNumber, r)
		}
	}
	if r := p.PerEntry; r.Count > 0 {
		ok, err := g.limiter.Allow(ctx, "entry:"+callerKey(entry), r.Count, r.Window)
		if err != nil {
			return fmt.Errorf("dial policy: %w", err)
		}
		if !ok {
			return deny(RuleRatePerEntry, "calls to entry %q started more than %s outbound legs", entry, r)
		}
	}
	if r := p.Global; r.Count > 0 {
		ok, err := g.limiter.Allow(ctx, "global", r.Count, r.Window)
		if err != nil {
			return fmt.Errorf("dial policy: %w", err)
		}
		if !ok {
			return deny(RuleRateGlobal, "more than %s outbound legs were started", r)
		}
	}
	return nil
}

// callerKey bounds what a caller-controlled string can put in a Redis key;
// "" (an anonymous caller, a call without an entry) is "anonymous".
func callerKey(n string) string {
	switch {
	case n == "":
		return "anonymous"
	case len(n) > 32:
		return n[:32]
	}
	return n
}

func newLegID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
