package policy

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Admitter counts a leg against every rate and takes its concurrency slot
// in one step. A Gate whose Limiter is one uses it: with Redis that is one
// script, one round trip, where a rate and a slot apiece cost one each.
type Admitter interface {
	Admit(ctx context.Context, a Admission) (Verdict, error)
}

// Admission is one leg asking to be counted.
type Admission struct {
	// Rates are counted in order, the narrowest first; a leg refused by
	// one is not counted by the wider ones.
	Rates []RateKey
	// Slot, when Max > 0: the leg's slot under SlotKey, held at most TTL.
	SlotKey, SlotID string
	Max             int
	TTL             time.Duration
	// Ended, when Max > 0: a slot under SlotKey given back first (the
	// same call's last leg, which has ended).
	Ended string
}

// RateKey is a rate a leg counts against.
type RateKey struct {
	Key    string
	Limit  int
	Window time.Duration
}

// Verdict says what refused a leg: the index in Admission.Rates of the
// rate it exceeded (-1: none), or that every slot was taken (then no rate
// counted it).
type Verdict struct {
	Rate     int
	SlotFull bool
}

// Admitted tells whether nothing refused the leg.
func (v Verdict) Admitted() bool { return v.Rate < 0 && !v.SlotFull }

// RedisCounters is the Limiter, Slots and Admitter of a gate on Redis,
// under the same keys as RedisLimiter and RedisSlots (so processes of an
// older version count with it).
type RedisCounters struct {
	*RedisLimiter
	*RedisSlots
}

// NewRedisCounters counts under keys starting with prefix. The admission
// script touches several keys at once: a single Redis (or a Sentinel
// pair), not a Redis Cluster.
func NewRedisCounters(rdb redis.Cmdable, prefix string) *RedisCounters {
	return &RedisCounters{NewRedisLimiter(rdb, prefix), NewRedisSlots(rdb, prefix)}
}

// admitLua counts a leg: KEYS the rates' window keys, then the slot set
// (when ARGV[1] says so); ARGV 1 has slot (0/1), 2 rates n, then limit
// and window ms per rate, then now ms, expiry ms, id, max, ttl ms, and the
// slot given back first ("" none).
// Returns 0 admitted, -1 the slots are full, r the r-th rate refused.
// It runs alone (Admit) or inside a record's write (Gate.CountAlong).
const admitLua = `
local n = tonumber(ARGV[2])
local a = 3 + 2 * n
local slot = ARGV[1] == '1' and KEYS[n + 1]
if slot then
  if ARGV[a + 5] and ARGV[a + 5] ~= '' then redis.call('ZREM', slot, ARGV[a + 5]) end
  redis.call('ZREMRANGEBYSCORE', slot, '-inf', ARGV[a])
  if not redis.call('ZSCORE', slot, ARGV[a + 2]) and redis.call('ZCARD', slot) >= tonumber(ARGV[a + 3]) then
    return -1
  end
end
for r = 1, n do
  local c = redis.call('INCR', KEYS[r])
  if c == 1 then redis.call('PEXPIRE', KEYS[r], ARGV[2 + 2 * r]) end
  if c > tonumber(ARGV[1 + 2 * r]) then return r end
end
if slot then
  redis.call('ZADD', slot, ARGV[a + 1], ARGV[a + 2])
  redis.call('PEXPIRE', slot, ARGV[a + 4])
end
return 0`

var admitScript = redis.NewScript(admitLua)

// admission is a's keys and arguments for admitLua.
func (c *RedisCounters) admission(a Admission) (keys []string, args []any) {
	now := c.RedisLimiter.now().UnixMilli()
	keys = make([]string, 0, len(a.Rates)+1)
	args = make([]any, 0, 8+2*len(a.Rates))
	args = append(args, boolArg(a.Max > 0), len(a.Rates))
	for _, r := range a.Rates {
		ms := r.Window.Milliseconds()
		keys = append(keys, c.rateKey(r.Key, now/ms*ms))
		args = append(args, r.Limit, ms)
	}
	if a.Max > 0 {
		keys = append(keys, c.slotKey(a.SlotKey))
	}
	args = append(args, now, now+a.TTL.Milliseconds(), a.SlotID, a.Max, a.TTL.Milliseconds(), a.Ended)
	return keys, args
}

// Admit implements Admitter.
func (c *RedisCounters) Admit(ctx context.Context, a Admission) (Verdict, error) {
	keys, args := c.admission(a)
	n, err := admitScript.Run(ctx, c.RedisLimiter.rdb, keys, args...).Int()
	if err != nil {
		return Verdict{}, fmt.Errorf("admission counters: %w", err)
	}
	return verdictOf(int64(n)), nil
}

// verdictOf reads admitLua's answer.
func verdictOf(n int64) Verdict {
	switch {
	case n < 0:
		return Verdict{Rate: -1, SlotFull: true}
	case n > 0:
		return Verdict{Rate: int(n) - 1}
	}
	return Verdict{Rate: -1}
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (l *RedisLimiter) rateKey(key string, start int64) string {
	return l.prefix + "rate:" + key + ":" + strconv.FormatInt(start, 10)
}

func (s *RedisSlots) slotKey(key string) string { return s.prefix + "slots:" + key }

// MemoryCounters is the Limiter, Slots and Admitter of a gate for one
// process.
type MemoryCounters struct {
	*MemoryLimiter
	*MemorySlots
}

// NewMemoryCounters returns empty in-process counters.
func NewMemoryCounters() *MemoryCounters {
	return &MemoryCounters{NewMemoryLimiter(), NewMemorySlots()}
}

// Admit implements Admitter, in the order the Redis script follows.
func (c *MemoryCounters) Admit(ctx context.Context, a Admission) (Verdict, error) {
	c.MemorySlots.mu.Lock()
	defer c.MemorySlots.mu.Unlock()
	if a.Max > 0 && a.Ended != "" {
		delete(c.MemorySlots.slots[a.SlotKey], a.Ended)
	}
	if a.Max > 0 && !c.MemorySlots.roomLocked(a.SlotKey, a.SlotID, a.Max) {
		return Verdict{Rate: -1, SlotFull: true}, nil
	}
	for i, r := range a.Rates {
		if ok, err := c.MemoryLimiter.Allow(ctx, r.Key, r.Limit, r.Window); err != nil || !ok {
			return Verdict{Rate: i}, err
		}
	}
	if a.Max > 0 {
		c.MemorySlots.takeLocked(a.SlotKey, a.SlotID, a.TTL)
	}
	return Verdict{Rate: -1}, nil
}
