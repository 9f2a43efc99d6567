package policy

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter counts events per key in fixed windows, shared by every ariflow
// instance when it is Redis-backed.
type Limiter interface {
	// Allow counts one event for key and reports whether the count in the
	// current window is still within limit. Refused events count too, so
	// a caller retrying in a loop stays refused.
	Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, error)
}

// Slots counts things that are up at once (outbound legs), each with an
// expiry so a crashed process cannot hold a slot for ever.
type Slots interface {
	// Acquire takes a slot for id under key if fewer than max are held;
	// the slot lapses after ttl unless released first.
	Acquire(ctx context.Context, key, id string, max int, ttl time.Duration) (bool, error)
	// Release gives the ids' slots back, in one step; releasing twice is
	// harmless.
	Release(ctx context.Context, key string, ids ...string) error
}

// RedisLimiter is a Limiter on Redis: one counter per key and window,
// INCR and PEXPIRE in one script so a counter never outlives its window.
type RedisLimiter struct {
	rdb    redis.Cmdable
	prefix string
	now    func() time.Time
}

// NewRedisLimiter counts under keys starting with prefix (e.g.
// "ariflow:policy:"), so several deployments can share one Redis.
func NewRedisLimiter(rdb redis.Cmdable, prefix string) *RedisLimiter {
	return &RedisLimiter{rdb: rdb, prefix: prefix, now: time.Now}
}

var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// Allow implements Limiter with a fixed window: the key names the window
// (its start in Unix milliseconds), so instances agree as long as their
// clocks do (NTP).
func (l *RedisLimiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, error) {
	ms := window.Milliseconds()
	k := l.rateKey(key, l.now().UnixMilli()/ms*ms)
	n, err := incrScript.Run(ctx, l.rdb, []string{k}, ms).Int64()
	if err != nil {
		return false, fmt.Errorf("rate counter %s: %w", key, err)
	}
	return n <= int64(limit), nil
}

// RedisSlots is Slots on Redis: a sorted set per key holding leg IDs scored
// by their expiry, so slots of a crashed process lapse on their own.
type RedisSlots struct {
	rdb    redis.Cmdable
	prefix string
	now    func() time.Time
}

// NewRedisSlots keeps its sets under keys starting with prefix.
func NewRedisSlots(rdb redis.Cmdable, prefix string) *RedisSlots {
	return &RedisSlots{rdb: rdb, prefix: prefix, now: time.Now}
}

// Drop lapsed slots, then add id if there is room; the set itself expires
// with its newest slot.
var acquireScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`)

// Acquire implements Slots.
func (s *RedisSlots) Acquire(ctx context.Context, key, id string, max int, ttl time.Duration) (bool, error) {
	now := s.now().UnixMilli()
	n, err := acquireScript.Run(ctx, s.rdb, []string{s.slotKey(key)},
		now, now+ttl.Milliseconds(), id, max, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("concurrency slots %s: %w", key, err)
	}
	return n == 1, nil
}

// Release implements Slots.
func (s *RedisSlots) Release(ctx context.Context, key string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	if err := s.rdb.ZRem(ctx, s.slotKey(key), members...).Err(); err != nil {
		return fmt.Errorf("concurrency slots %s: %w", key, err)
	}
	return nil
}

// MemoryLimiter is a Limiter for one process (tests, single instance).
type MemoryLimiter struct {
	mu     sync.Mutex
	counts map[string]int
	now    func() time.Time
}

// NewMemoryLimiter returns an empty in-process Limiter.
func NewMemoryLimiter() *MemoryLimiter {
	return &MemoryLimiter{counts: map[string]int{}, now: time.Now}
}

// Allow implements Limiter with the same fixed windows as RedisLimiter.
func (l *MemoryLimiter) Allow(_ context.Context, key string, limit int, window time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := window.Milliseconds()
	start := l.now().UnixMilli() / ms * ms
	k := key + ":" + strconv.FormatInt(start, 10)
	l.counts[k]++
	return l.counts[k] <= limit, nil
}

// MemorySlots is Slots for one process (tests, single instance).
type MemorySlots struct {
	mu    sync.Mutex
	slots map[string]map[string]time.Time // key -> id -> expiry
	now   func() time.Time
}

// NewMemorySlots returns an empty in-process Slots.
func NewMemorySlots() *MemorySlots {
	return &MemorySlots{slots: map[string]map[string]time.Time{}, now: time.Now}
}

// Acquire implements Slots.
func (s *MemorySlots) Acquire(_ context.Context, key, id string, max int, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.roomLocked(key, id, max) {
		return false, nil
	}
	s.takeLocked(key, id, ttl)
	return true, nil
}

// roomLocked drops lapsed slots and tells whether id holds a slot or one
// is free.
func (s *MemorySlots) roomLocked(key, id string, max int) bool {
	now := s.now()
	set := s.slots[key]
	for k, exp := range set {
		if !exp.After(now) {
			delete(set, k)
		}
	}
	if _, ok := set[id]; ok {
		return true
	}
	return len(set) < max
}

func (s *MemorySlots) takeLocked(key, id string, ttl time.Duration) {
	if s.slots[key] == nil {
		s.slots[key] = map[string]time.Time{}
	}
	s.slots[key][id] = s.now().Add(ttl)
}

// Release implements Slots.
func (s *MemorySlots) Release(_ context.Context, key string, ids ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.slots[key], id)
	}
	return nil
}
