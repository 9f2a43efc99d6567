// Package store keeps call records and the leadership lease in Redis:
// every write of a record is fenced by the lease. It knows nothing of ARI
// or of flows beyond the record.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ariflow/ariflow/record"
)

// Redis keeps one key per call, a JSON record with a TTL so that a
// crashed process leaves nothing for ever, and the leadership lease of the
// (Asterisk, app) pair it serves. Keys carry that pair's namespace, in
// braces so that a Redis Cluster keeps a namespace on one slot (the
// scripts touch the lease and a record together):
//
//	ariflow:{app@pbx}:lease    "owner|epoch", with a TTL
//	ariflow:{app@pbx}:epoch    the last epoch handed out
//	ariflow:{app@pbx}:grace    set for a lease lifetime when Redis lost its data
//	ariflow:{app@pbx}:call:ID  a call record
//	ariflow:{app@pbx}:flow:D   a flow's source by its digest, with a TTL
//
// Every write of a record is one script that first checks that the
// writer holds the lease at its epoch: a process that lost the lease
// (stopped, partitioned, slow) can never overwrite the new active's state.
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// Namespace is the key namespace of an app on a PBX: "ariflow:{app@pbx}".
func Namespace(app, pbx string) string {
	ns := app
	if pbx != "" {
		ns += "@" + pbx
	}
	return "ariflow:{" + ns + "}"
}

// NewRedis returns a store; prefix is a Namespace.
func NewRedis(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Redis {
	if ttl <= 0 {
		ttl = 4 * time.Hour
	}
	rdb.AddHook(clearRedisErrors{}) // writes refused for want of replicas say so
	return &Redis{rdb: rdb, prefix: prefix, ttl: ttl}
}

func (s *Redis) key(id string) string    { return s.prefix + ":call:" + id }
func (s *Redis) flowKey(d string) string { return s.prefix + ":flow:" + d }
func (s *Redis) leaseKey() string        { return s.prefix + ":lease" }
func (s *Redis) epochKey() string        { return s.prefix + ":epoch" }
func (s *Redis) graceKey() string        { return s.prefix + ":grace" }

func token(owner string, epoch int64) string { return owner + "|" + strconv.FormatInt(epoch, 10) }

// KEYS: record, lease. ARGV: token, data, ttl ms.
var saveScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)

// KEYS: record, lease. ARGV: token.
var deleteScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`)

// renewIfHeld starts both lease scripts (KEYS[1] the lease, ARGV[1] the
// owner, ARGV[2] the TTL in ms): a held lease is renewed for its owner
// (its epoch returned) and refused to anyone else (0).
const renewIfHeld = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, '|', 1, true)
  if sep and string.sub(cur, 1, sep - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(cur, sep + 1))
  end
  return 0
end
`

// KEYS: lease, epoch, grace. ARGV: owner, ttl ms. A standby's campaign:
// takes the lease with the next epoch when it is free, renews it when the
// owner already holds it; returns the epoch held, or 0. When the lease
// and the epoch counter are both gone, Redis lost its data (flushed, or
// restarted without persistence) while the active process may well be
// alive: the standby leaves it one lease lifetime (the grace key) to take
// its lease back before it takes it.
var campaignScript = redis.NewScript(renewIfHeld + `
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], '0')
  redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local e = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. e, 'PX', ARGV[2])
return e`)

// KEYS: lease, epoch. ARGV: owner, ttl ms. The holder's renewal: renews
// the lease while owner holds it, takes it back with the next epoch when
// it is gone (lost from Redis, or lapsed with no standby taking it);
// returns the epoch held, or 0 when another process holds it.
var renewScript = redis.NewScript(renewIfHeld + `
local e = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. e, 'PX', ARGV[2])
return e`)

// KEYS: lease. ARGV: token.
var resignScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Save writes the record if its Owner holds the lease at its Epoch.
func (s *Redis) Save(ctx context.Context, rec *record.Call) error {
	b, err := record.Encode(rec)
	if err != nil {
		return err
	}
	n, err := saveScript.Run(ctx, s.rdb, []string{s.key(rec.CallID), s.leaseKey()},
		token(rec.Owner, rec.Epoch), b, s.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("save call %s: %w", rec.CallID, err)
	}
	if n == 0 {
		return fmt.Errorf("save call %s: %w", rec.CallID, record.ErrFenced)
	}
	return nil
}

// Part is Lua that runs inside a record's write, after the fence check
// and before the write, over its own Keys and Args (KEYS and ARGV in its
// body): the dial policy's count of a leg that the write records
// (policy.Along). It returns 0 to let the write be made, any other integer
// to refuse it, or a table {n} to have Else written instead (when there is
// no Else, {n} refuses as n does).
type Part struct {
	Lua  string
	Keys []string
	Args []any
	// Else is the record written when the part answers {n}: the same
	// write without what the part did not admit (a chained leg).
	Else *record.Call
}

// Wrote says which record SaveAlong wrote: the one given, or the part's
// Else, with the part's answer in Code (0 when a write made again found
// Else already written).
type Wrote struct {
	Else bool
	Code int64
}

// ErrPartRefused is SaveAlong's error when the part refused the write;
// errors.As a *PartRefused gives its answer.
var ErrPartRefused = errors.New("refused by the write's part")

// PartRefused carries the part's answer.
type PartRefused struct{ Code int64 }

func (r *PartRefused) Error() string { return fmt.Sprintf("%v (%d)", ErrPartRefused, r.Code) }
func (r *PartRefused) Unwrap() error { return ErrPartRefused }

// alongScripts holds one script per part's Lua (few: the policy's count).
var alongScripts sync.Map

// KEYS: record, lease, then the part's. ARGV: token, data, ttl ms, the
// else data ("" none), then the part's. Returns {1, 0} written (or found
// written), {3, n} the else written (n the part's answer; 0 found
// written), {2, n} refused by the part (n), {0, 0} fenced.
func alongScript(lua string) *redis.Script {
	if sc, ok := alongScripts.Load(lua); ok {
		return sc.(*redis.Script)
	}
	sc, _ := alongScripts.LoadOrStore(lua, redis.NewScript(`
local function part(KEYS, ARGV)
`+lua+`
end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {0, 0} end
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[2] then return {1, 0} end
if ARGV[4] ~= '' and cur == ARGV[4] then return {3, 0} end
local n = part({unpack(KEYS, 3)}, {unpack(ARGV, 5)})
if type(n) == 'table' then
  if ARGV[4] == '' then return {2, n[1]} end
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
  return {3, n[1]}
end
if n ~= 0 then return {2, n} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1, 0}`))
	return sc.(*redis.Script)
}

// SaveAlong is Save with part run first in the same script, after the
// fence check: one round trip. A part that refuses leaves the record
// unwritten (a *PartRefused); a fenced writer runs no part. A record
// already holding these very bytes (the same write made again after its
// answer was lost), or part.Else's, is not counted twice: the part does
// not run. part.Else, when set, carries the same Owner and Epoch as rec.
func (s *Redis) SaveAlong(ctx context.Context, rec *record.Call, part Part) (Wrote, error) {
	if part.Lua == "" {
		return Wrote{}, s.Save(ctx, rec)
	}
	b, err := record.Encode(rec)
	if err != nil {
		return Wrote{}, err
	}
	var alt []byte
	if part.Else != nil {
		if alt, err = record.Encode(part.Else); err != nil {
			return Wrote{}, err
		}
	}
	keys := append([]string{s.key(rec.CallID), s.leaseKey()}, part.Keys...)
	args := append([]any{token(rec.Owner, rec.Epoch), b, s.ttl.Milliseconds(), alt}, part.Args...)
	res, err := alongScript(part.Lua).Run(ctx, s.rdb, keys, args...).Int64Slice()
	switch {
	case err != nil:
		return Wrote{}, fmt.Errorf("save call %s: %w", rec.CallID, err)
	case len(res) != 2:
		return Wrote{}, fmt.Errorf("save call %s: unexpected answer %v", rec.CallID, res)
	case res[0] == 0:
		return Wrote{}, fmt.Errorf("save call %s: %w", rec.CallID, record.ErrFenced)
	case res[0] == 2:
		return Wrote{}, fmt.Errorf("save call %s: %w", rec.CallID, &PartRefused{Code: res[1]})
	case res[0] == 3:
		return Wrote{Else: true, Code: res[1]}, nil
	}
	return Wrote{}, nil
}

func (s *Redis) Load(ctx context.Context, callID string) (*record.Call, error) {
	b, err := s.rdb.Get(ctx, s.key(callID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, record.ErrNoRecord
	}
	if err != nil {
		return nil, fmt.Errorf("load call %s: %w", callID, err)
	}
	return record.Decode(b)
}

// loadBatch is how many records LoadMany asks for in one request.
const loadBatch = 200

// LoadMany reads the records of ids in a round trip per loadBatch of
// them: recs[i] is ids[i]'s record, nil when it has none (it ended
// meanwhile), or bad[i] says why it could not be read.
func (s *Redis) LoadMany(ctx context.Context, ids []string) (recs []*record.Call, bad []error, err error) {
	recs, bad = make([]*record.Call, len(ids)), make([]error, len(ids))
	for from := 0; from < len(ids); from += loadBatch {
		part := ids[from:min(from+loadBatch, len(ids))]
		keys := make([]string, len(part))
		for i, id := range part {
			keys[i] = s.key(id)
		}
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, nil, fmt.Errorf("load %d calls: %w", len(part), err)
		}
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
			case string:
				recs[from+i], bad[from+i] = record.Decode([]byte(v))
			default:
				bad[from+i] = fmt.Errorf("load call %s: unexpected %T", part[i], v)
			}
		}
	}
	return recs, bad, nil
}

// Delete removes the record if f holds the lease.
func (s *Redis) Delete(ctx context.Context, callID string, f record.Fence) error {
	n, err := deleteScript.Run(ctx, s.rdb, []string{s.key(callID), s.leaseKey()}, token(f.Owner, f.Epoch)).Int()
	if err != nil {
		return fmt.Errorf("delete call %s: %w", callID, err)
	}
	if n == 0 {
		return fmt.Errorf("delete call %s: %w", callID, record.ErrFenced)
	}
	return nil
}

// Active lists the call IDs that have a record.
func (s *Redis) Active(ctx context.Context) ([]string, error) {
	prefix := s.key("")
	var ids []string
	iter := s.rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		ids = append(ids, strings.TrimPrefix(iter.Val(), prefix))
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list active calls: %w", err)
	}
	return ids, nil
}

// Campaign implements the controller's Elector.
func (s *Redis) Campaign(ctx context.Context, owner string, ttl time.Duration) (int64, error) {
	e, err := campaignScript.Run(ctx, s.rdb, []string{s.leaseKey(), s.epochKey(), s.graceKey()}, owner, ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("lease: %w", err)
	}
	return e, nil
}

// Renew implements the controller's Elector.
func (s *Redis) Renew(ctx context.Context, owner string, ttl time.Duration) (int64, error) {
	e, err := renewScript.Run(ctx, s.rdb, []string{s.leaseKey(), s.epochKey()}, owner, ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("lease: %w", err)
	}
	return e, nil
}

// Holder implements the controller's Elector.
func (s *Redis) Holder(ctx context.Context) (string, error) {
	cur, err := s.rdb.Get(ctx, s.leaseKey()).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease: %w", err)
	}
	owner, _, _ := strings.Cut(cur, "|")
	return owner, nil
}

// Resign implements the controller's Elector.
func (s *Redis) Resign(ctx context.Context, owner string, epoch int64) error {
	if err := resignScript.Run(ctx, s.rdb, []string{s.leaseKey()}, token(owner, epoch)).Err(); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	return nil
}

// ArchivedFlow is a flow's source as the store keeps it.
type ArchivedFlow struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Source []byte `json:"source"`
}

// PutFlow keeps a flow's source under its digest for the records' lifetime
// (a digest names one content: writing it again only renews it).
func (s *Redis) PutFlow(ctx context.Context, digest string, f ArchivedFlow) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.flowKey(digest), b, s.ttl).Err(); err != nil {
		return fmt.Errorf("keep flow %s (%s): %w", f.Name, digest, err)
	}
	return nil
}

// GetFlow returns the flow kept under digest; record.ErrNoRecord when none.
func (s *Redis) GetFlow(ctx context.Context, digest string) (ArchivedFlow, error) {
	var f ArchivedFlow
	b, err := s.rdb.Get(ctx, s.flowKey(digest)).Bytes()
	if errors.Is(err, redis.Nil) {
		return f, fmt.Errorf("flow %s: %w", digest, record.ErrNoRecord)
	}
	if err != nil {
		return f, fmt.Errorf("flow %s: %w", digest, err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("flow %s: %w", digest, err)
	}
	return f, nil
}
