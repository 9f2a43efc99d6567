package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

type counters struct {
	name    string
	limiter Limiter
	slots   Slots
	advance func(time.Duration) // moves the counters' clock
}

// both runs a test against the in-memory counters and the Redis ones
// (on miniredis), each counting a rate and a slot apiece and in one step
// (Admitter), which must all behave the same.
func both(t *testing.T, fn func(t *testing.T, c counters)) {
	t.Run("memory, one step", func(t *testing.T) {
		now := time.Unix(1_700_000_000, 0)
		c := NewMemoryCounters()
		c.MemoryLimiter.now = func() time.Time { return now }
		c.MemorySlots.now = c.MemoryLimiter.now
		fn(t, counters{"memory-admit", c, c, func(d time.Duration) { now = now.Add(d) }})
	})
	t.Run("redis, one step", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		now := time.Unix(1_700_000_000, 0)
		c := NewRedisCounters(rdb, "test:policy:")
		c.RedisLimiter.now = func() time.Time { return now }
		c.RedisSlots.now = c.RedisLimiter.now
		fn(t, counters{"redis-admit", c, c, func(d time.Duration) { now = now.Add(d); mr.FastForward(d) }})
	})
	t.Run("memory", func(t *testing.T) {
		now := time.Unix(1_700_000_000, 0)
		l, s := NewMemoryLimiter(), NewMemorySlots()
		l.now = func() time.Time { return now }
		s.now = l.now
		fn(t, counters{"memory", l, s, func(d time.Duration) { now = now.Add(d) }})
	})
	t.Run("redis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		now := time.Unix(1_700_000_000, 0)
		l, s := NewRedisLimiter(rdb, "test:policy:"), NewRedisSlots(rdb, "test:policy:")
		l.now = func() time.Time { return now }
		s.now = l.now
		fn(t, counters{"redis", l, s, func(d time.Duration) { now = now.Add(d); mr.FastForward(d) }})
	})
}

func wantRule(t *testing.T, err error, rule string) {
	t.Helper()
	var d *Denied
	if !errors.As(err, &d) || d.Rule != rule || !errors.Is(err, ErrDenied) {
		t.Fatalf("got %v, want rule %s", err, rule)
	}
}

const (
	mobile  = "+4915123456789"
	premium = "+19005550123"
	entry   = "+4930555000" // the number the callers dialled
)

func TestGateRefusesBeforeCounting(t *testing.T) {
	both(t, func(t *testing.T, c counters) {
		p := Default()
		p.PerCaller = Rate{1, time.Hour}
		g := NewGate(p, c.limiter, c.slots)
		ctx := context.Background()
		_, err := g.Acquire(ctx, Leg{Caller: "+4917600000001", Entry: entry, Number: premium})
		wantRule(t, err, RuleNumberType)
		_, err = g.Acquire(ctx, Leg{Caller: "+4917600000001", Entry: entry, Number: mobile, TransfersSoFar: 5})
		wantRule(t, err, RuleTransfersPerCall)
		// Neither refusal used the caller's one leg.
		rel, err := g.Acquire(ctx, Leg{Caller: "+4917600000001", Entry: entry, Number: mobile, TransfersSoFar: 4})
		if err != nil {
			t.Fatal(err)
		}
		rel()
		rel()
	})
}

func TestGateRateLimits(t *testing.T) {
	both(t, func(t *testing.T, c counters) {
		p := Default()
		p.PerCaller = Rate{2, time.Minute}
		p.Global = Rate{3, time.Minute}
		g := NewGate(p, c.limiter, c.slots)
		ctx := context.Background()
		a, b, anon := "+4917600000001", "+4917600000002", ""
		for i := 0; i < 2; i++ {
			if _, err := g.Acquire(ctx, Leg{Caller: a, Entry: entry, Number: mobile, TransfersSoFar: i}); err != nil {
				t.Fatalf("leg %d: %v", i, err)
			}
		}
		_, err := g.Acquire(ctx, Leg{Caller: a, Entry: entry, Number: mobile, TransfersSoFar: 2})
		wantRule(t, err, RuleRatePerCaller)
		if _, err := g.Acquire(ctx, Leg{Caller: b, Entry: entry, Number: mobile}); err != nil {
			t.Fatalf("another caller: %v", err)
		}
		_, err = g.Acquire(ctx, Leg{Caller: anon, Entry: entry, Number: mobile})
		wantRule(t, err, RuleRateGlobal) // b took the third global leg
		// A new window starts afresh.
		c.advance(time.Minute)
		if _, err := g.Acquire(ctx, Leg{Caller: a, Entry: entry, Number: mobile}); err != nil {
			t.Fatalf("next window: %v", err)
		}
	})
}

// capOnly is the default policy with a cap of n legs up at once and no
// rate per caller, so that only the cap decides.
func capOnly(n int) *Policy {
	p := Default()
	p.PerCaller = Rate{}
	p.Concurrent = n
	return p
}

func TestGateConcurrency(t *testing.T) {
	both(t, func(t *testing.T, c counters) {
		p := capOnly(2)
		g := NewGate(p, c.limiter, c.slots)
		g.LegTTL = time.Hour
		ctx := context.Background()
		r1, err := g.Acquire(ctx, Leg{Caller: "+4917600000001", Entry: entry, Number: mobile})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Acquire(ctx, Leg{Caller: "+4917600000002", Entry: entry, Number: mobile}); err != nil {
			t.Fatal(err)
		}
		_, err = g.Acquire(ctx, Leg{Caller: "+4917600000003", Entry: entry, Number: mobile})
		wantRule(t, err, RuleConcurrent)
		r1()
		if _, err := g.Acquire(ctx, Leg{Caller: "+4917600000003", Entry: entry, Number: mobile}); err != nil {
			t.Fatalf("after a release: %v", err)
		}
		_, err = g.Acquire(ctx, Leg{Caller: "+4917600000004", Entry: entry, Number: mobile})
		wantRule(t, err, RuleConcurrent)
		// Slots never released (a crashed process) lapse after LegTTL.
		c.advance(time.Hour + time.Second)
		if _, err := g.Acquire(ctx, Leg{Caller: "+4917600000004", Entry: entry, Number: mobile}); err != nil {
			t.Fatalf("after the TTL: %v", err)
		}
	})
}

// A process that took a call over releases the slot of the leg it
// adopted, by name, although another process acquired it.
func TestGateReleaseByName(t *testing.T) {
	both(t, func(t *testing.T, c counters) {
		p := capOnly(1)
		dead, standby := NewGate(p, c.limiter, c.slots), NewGate(p, c.limiter, c.slots)
		ctx := context.Background()
		if _, err := dead.Acquire(ctx, Leg{Slot: "call-1:0", Caller: "+4917600000001", Entry: entry, Number: mobile}); err != nil {
			t.Fatal(err)
		}
		_, err := standby.Acquire(ctx, Leg{Slot: "call-2:0", Caller: "+4917600000002", Entry: entry, Number: mobile})
		wantRule(t, err, RuleConcurrent)
		if err := standby.Release(ctx, "call-1:0"); err != nil {
			t.Fatal(err)
		}
		if _, err := standby.Acquire(ctx, Leg{Slot: "call-2:0", Caller: "+4917600000002", Entry: entry, Number: mobile}); err != nil {
			t.Fatalf("after the adopter's release: %v", err)
		}
	})
}

// A call's two ended legs (a transfer and the one chained to it) are
// given back together; an empty name is no slot.
func TestGateReleaseSeveral(t *testing.T) {
	both(t, func(t *testing.T, c counters) {
		p := capOnly(2)
		g := NewGate(p, c.limiter, c.slots)
		ctx := context.Background()
		for _, slot := range []string{"call-1:0", "call-1:1"} {
			if _, err := g.Acquire(ctx, Leg{Slot: slot, Caller: "+4917600000001", Entry: entry, Number: mobile}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := g.Acquire(ctx, Leg{Slot: "call-2:0", Caller: "+4917600000002", Entry: entry, Number: mobile})
		wantRule(t, err, RuleConcurrent)
		if err := g.Release(ctx, "call-1:0", "", "call-1:1"); err != nil {
			t.Fatal(err)
		}
		for _, slot := range []string{"call-2:0", "call-2:1"} {
			if _, err := g.Acquire(ctx, Leg{Slot: slot, Caller: "+4917600000002", Entry: entry, Number: mobile}); err != nil {
				t.Fatalf("%s after both were given back: %v", slot, err)
			}
		}
		if err := g.Release(ctx, ""); err != nil {
			t.Errorf("no slot to give back: %v", err)
		}
	})
}

// A leg refused by a rate limit must give its concurrency slot back.
func TestGateRateRefusalFreesSlot(t *testing.T) {
	both(t, func(t *testing.T, c counters) {
		p := Default()
		p.PerCaller = Rate{1, time.Hour}
		p.Concurrent = 1
		g := NewGate(p, c.limiter, c.slots)
		ctx := context.Background()
		r, err := g.Acquire(ctx, Leg{Caller: "+4917600000001", Entry: entry, Number: mobile})
		if err != nil {
			t.Fatal(err)
		}
		r()
		_, err = g.Acquire(ctx, Leg{Caller: "+4917600000001", Entry: entry, Number: mobile, TransfersSoFar: 1})
		wantRule(t, err, RuleRatePerCaller)
		if _, err := g.Acquire(ctx, Leg{Caller: "+4917600000002", Entry: entry, Number: mobile}); err != nil {
			t.Fatalf("slot leaked by the refused leg: %v", err)
		}
	})
}

// Without Redis the gate fails closed: an error, not a dialled number.
func TestGateRedisDown(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	mr.Close()
	p := Default()
	p.Concurrent = 1
	for _, g := range []*Gate{
		NewGate(p, NewRedisLimiter(rdb, "x:"), NewMemorySlots()),
		NewGate(p, NewMemoryLimiter(), NewRedisSlots(rdb, "x:")),
	} {
		rel, err := g.Acquire(context.Background(), Leg{Caller: "+4917600000001", Entry: entry, Number: mobile})
		if err == nil || errors.Is(err, ErrDenied) || rel != nil {
			t.Errorf("Redis down: release %v, err %v; want a non-denial error", rel != nil, err)
		}
	}
}

func TestGateWithPolicy(t *testing.T) {
	base := Default()
	flow, err := Parse("flow.yaml", []byte("allow: {countries: [43]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := NewGate(base, NewMemoryLimiter(), NewMemorySlots()).WithPolicy(base.Narrow(flow))
	_, err = g.Acquire(context.Background(), Leg{Caller: "", Entry: entry, Number: mobile})
	wantRule(t, err, RuleCountry)
}

func TestRedisKeysArePrefixed(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	p := Default()
	p.Global = Rate{10, time.Minute}
	p.Concurrent = 5
	g := NewGate(p, NewRedisLimiter(rdb, "acme:policy:"), NewRedisSlots(rdb, "acme:policy:"))
	if _, err := g.Acquire(context.Background(), Leg{Caller: "+4917600000001", Entry: entry, Number: mobile}); err != nil {
		t.Fatal(err)
	}
	keys := mr.Keys()
	if len(keys) != 4 {
		t.Fatalf("keys %v, want per-caller, per-entry, global and slots", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "acme:policy:") {
			t.Errorf("key %q lacks the prefix", k)
		}
		if mr.TTL(k) <= 0 {
			t.Errorf("key %q has no expiry", k)
		}
	}
}

// A count made along a record's write (CountAlong, its Lua run inside
// another script) refuses and counts as Count does, leg by leg.
func TestCountAlongAgreesWithCount(t *testing.T) {
	ctx := context.Background()
	p := Default()
	p.PerCaller = Rate{2, time.Minute}
	p.Global = Rate{3, time.Minute}
	p.Concurrent = 3
	gates := make([]*Gate, 2)
	var rdbs []*redis.Client
	for i := range gates {
		var rdb *redis.Client
		gates[i], rdb = redisGate(t, p)
		rdbs = append(rdbs, rdb)
	}
	if _, ok := NewGate(p, NewMemoryLimiter(), NewMemorySlots()).CountAlong(Leg{Slot: "x"}); ok {
		t.Fatal("in-memory counters offered a count along a Redis write")
	}
	// The part inside a script of its own, as the store runs it.
	run := func(a *Along) error {
		if a.Lua == "" {
			return nil
		}
		sc := redis.NewScript("local function part(KEYS, ARGV)\n" + a.Lua + "\nend\nreturn part(KEYS, ARGV)")
		n, err := sc.Run(ctx, rdbs[1], a.Keys, a.Args...).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return a.Verdict(n)
	}
	legs := []struct{ caller, slot string }{
		{"+4917600000001", "c1:0"}, {"+4917600000001", "c1:1"}, {"+4917600000001", "c1:2"}, // per caller
		{"+4917600000002", "c2:0"}, {"+4917600000003", "c3:0"}, // the cap
		{"", "c1:0"}, {"+4917600000004", "c4:0"}, // a slot given back; global
	}
	var rules []string
	for i, l := range legs {
		if l.caller == "" {
			for _, g := range gates {
				if err := g.Release(ctx, l.slot); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		leg := Leg{Slot: l.slot, Caller: l.caller, Entry: entry, Number: mobile}
		_, want := gates[0].Count(ctx, leg)
		a, ok := gates[1].CountAlong(leg)
		if !ok {
			t.Fatal("Redis counters offered no count along a write")
		}
		got := run(a)
		var d *Denied
		if errors.As(want, &d) {
			rules = append(rules, d.Rule)
		} else {
			rules = append(rules, "")
		}
		if (want == nil) != (got == nil) || want != nil && want.Error() != got.Error() {
			t.Errorf("leg %d: along %v, Count %v", i, got, want)
		}
	}
	if want := []string{"", "", RuleRatePerCaller, "", RuleConcurrent, RuleRateGlobal}; !slices.Equal(rules, want) {
		t.Errorf("Count's verdicts %q, want %q: the sequence tries every rule", rules, want)
	}
	// Nothing to count: no Lua, nothing asked of Redis.
	none := Default()
	none.PerCaller, none.PerEntry, none.Global, none.Concurrent = Rate{}, Rate{}, Rate{}, 0
	if a, ok := NewGate(none, gates[1].limiter, gates[1].slots).CountAlong(Leg{Slot: "c9:0", Number: mobile}); !ok || a.Lua != "" {
		t.Errorf("nothing to count: %+v %v, want no Lua", a, ok)
	}
}

// A count along a record's write gives the call's last leg's slot back
// first (Leg.Ended): with a cap of one, the call's next leg is admitted
// without a release of its own, and holds the slot; without Ended it is
// refused.
func TestCountAlongGivesTheEndedSlotBack(t *testing.T) {
	ctx := context.Background()
	p := Default()
	p.PerCaller, p.PerEntry, p.Global = Rate{}, Rate{}, Rate{}
	p.Concurrent = 1
	g, rdb := redisGate(t, p)
	count := func(leg Leg) error {
		a, ok := g.CountAlong(leg)
		if !ok || a.Lua == "" {
			t.Fatalf("no count along: %+v %v", a, ok)
		}
		sc := redis.NewScript("local function part(KEYS, ARGV)\n" + a.Lua + "\nend\nreturn part(KEYS, ARGV)")
		n, err := sc.Run(ctx, rdb, a.Keys, a.Args...).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return a.Verdict(n)
	}
	leg := func(slot, ended string) Leg {
		return Leg{Slot: slot, Caller: "+4917600000001", Entry: entry, Number: mobile, Ended: ended}
	}
	if err := count(leg("c1:0", "")); err != nil {
		t.Fatalf("first leg: %v", err)
	}
	if err := count(leg("c1:1", "")); !errors.Is(err, ErrDenied) {
		t.Fatalf("the next leg with the first's slot still held: %v, want refused by the cap", err)
	}
	if err := count(leg("c1:1", "c1:0")); err != nil {
		t.Fatalf("the next leg giving the first's slot back: %v, want admitted", err)
	}
	if err := count(leg("c2:0", "")); !errors.Is(err, ErrDenied) {
		t.Errorf("another call's leg: %v, want refused (the slot is c1:1's)", err)
	}
}

// Count gives the call's last slot back before the cap's check too, with
// every kind of counters: those that admit in one step and those that
// count the slot apart from the rates.
func TestCountGivesTheEndedSlotBack(t *testing.T) {
	p := Default()
	p.Concurrent = 1
	for _, tc := range []struct {
		name string
		gate func(t *testing.T) *Gate
	}{
		{"redis", func(t *testing.T) *Gate {
			g, _ := redisGate(t, p)
			return g
		}},
		{"memory", func(*testing.T) *Gate { c := NewMemoryCounters(); return NewGate(p, c, c) }},
		{"memory, slots apart", func(*testing.T) *Gate { return NewGate(p, NewMemoryLimiter(), NewMemorySlots()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, g := context.Background(), tc.gate(t)
			leg := func(slot, ended string) Leg {
				return Leg{Slot: slot, Caller: "+4917600000001", Entry: entry, Number: mobile, Ended: ended}
			}
			if _, err := g.Count(ctx, leg("c1:0", "")); err != nil {
				t.Fatalf("first leg: %v", err)
			}
			if _, err := g.Count(ctx, leg("c1:1", "")); !errors.Is(err, ErrDenied) {
				t.Fatalf("the next leg with the first's slot still held: %v, want refused by the cap", err)
			}
			if _, err := g.Count(ctx, leg("c1:1", "c1:0")); err != nil {
				t.Fatalf("the next leg giving the first's slot back: %v, want admitted", err)
			}
			if _, err := g.Count(ctx, leg("c2:0", "")); !errors.Is(err, ErrDenied) {
				t.Errorf("another call's leg: %v, want refused (the slot is c1:1's)", err)
			}
		})
	}
}

// CountAlongThen counts a leg and then the next in one script: the first
// refused, the next is not counted (its slot and rates untouched); the
// next refused, the first stays counted and the answer is {n}, which
// ThenVerdict reads as the rule that refused it.
func TestCountAlongThen(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		pol       func(*Policy)
		held      int    // slots other calls hold first
		first     string // the first leg's rule refusing it ("" admitted)
		then      string // the next leg's
		slots     int    // slots held after
		callerRun string // the caller rate's count after
	}{
		{"both admitted", func(p *Policy) { p.Concurrent = 3; p.PerCaller = Rate{2, time.Minute} }, 0, "", "", 2, "2"},
		{"the cap leaves one", func(p *Policy) { p.Concurrent = 2 }, 1, "", RuleConcurrent, 2, ""},
		{"the caller's rate leaves one", func(p *Policy) { p.PerCaller = Rate{1, time.Minute} }, 0, "", RuleRatePerCaller, 0, "2"},
		{"the first refused", func(p *Policy) { p.Concurrent = 1 }, 1, RuleConcurrent, "", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Default()
			p.PerCaller, p.PerEntry, p.Global, p.Concurrent = Rate{}, Rate{}, Rate{}, 0
			tc.pol(p)
			g, rdb := redisGate(t, p)
			for i := range tc.held {
				if _, err := g.Count(ctx, Leg{Slot: fmt.Sprintf("other:%d", i), Caller: "+4917600000009", Number: mobile}); err != nil {
					t.Fatal(err)
				}
			}
			leg := Leg{Slot: "c1:0", Caller: "+4917600000001", Entry: entry, Number: mobile}
			next := Leg{Slot: "c1:1", Caller: "+4917600000001", Entry: entry, Number: mobile, TransfersSoFar: 1}
			a, ok := g.CountAlongThen(leg, &next)
			if !ok || a.Lua == "" {
				t.Fatalf("no count along: %+v %v", a, ok)
			}
			sc := redis.NewScript("local function part(KEYS, ARGV)\n" + a.Lua + "\nend\nlocal n = part(KEYS, ARGV)\nif type(n) == 'table' then return {1, n[1]} end\nreturn {0, n}")
			res, err := sc.Run(ctx, rdb, a.Keys, a.Args...).Int64Slice()
			if err != nil {
				t.Fatal(err)
			}
			rule := func(err error) string {
				var d *Denied
				if errors.As(err, &d) {
					return d.Rule
				}
				return ""
			}
			var first, then string
			if res[0] == 1 {
				then = rule(a.ThenVerdict(res[1]))
			} else {
				first = rule(a.Verdict(res[1]))
			}
			if first != tc.first || then != tc.then {
				t.Errorf("first refused by %q, next by %q; want %q, %q", first, then, tc.first, tc.then)
			}
			if n, _ := rdb.ZCard(ctx, "t:slots:legs").Result(); int(n) != tc.slots {
				t.Errorf("%d slots held, want %d", n, tc.slots)
			}
			if tc.callerRun != "" {
				keys, _ := rdb.Keys(ctx, "t:rate:caller:*").Result()
				if len(keys) != 1 {
					t.Fatalf("caller rate keys %q", keys)
				}
				if n, _ := rdb.Get(ctx, keys[0]).Result(); n != tc.callerRun {
					t.Errorf("the caller's rate counted %s, want %s", n, tc.callerRun)
				}
			}
		})
	}
	// Nothing to count for the next leg: CountAlong's own Lua.
	p := Default()
	p.PerCaller, p.PerEntry, p.Global, p.Concurrent = Rate{}, Rate{}, Rate{}, 0
	g, _ := redisGate(t, p)
	if a, ok := g.CountAlongThen(Leg{Slot: "c1:0", Number: mobile}, &Leg{Slot: "c1:1", Number: mobile}); !ok || a.Lua != "" {
		t.Errorf("nothing to count: %+v %v, want no Lua", a, ok)
	}
}

// redisGate is a gate with p on Redis counters under "t:", on a
// miniredis of its own, and the client to look at them with.
func redisGate(t *testing.T, p *Policy) (*Gate, *redis.Client) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	c := NewRedisCounters(rdb, "t:")
	return NewGate(p, c, c), rdb
}
