package store

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ariflow/ariflow/record"
)

// The Redis store's scripts (fencing, the lease, the grace after a data
// loss) on miniredis, which runs them as Redis does.
func newRedisStoreTest(t *testing.T) (*Redis, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return NewRedis(rdb, Namespace("ariflow", "pbx1"), time.Hour), mr
}

func TestRedisStoreFencing(t *testing.T) {
	ctx := context.Background()
	s, mr := newRedisStoreTest(t)
	// A Redis that never held a lease looks like one that lost its data:
	// the first process waits one lease lifetime.
	if e, err := s.Campaign(ctx, "a", time.Second); e != 0 || err != nil {
		t.Fatalf("campaign on an empty Redis: %d %v, want 0 (grace)", e, err)
	}
	mr.FastForward(2 * time.Second)
	e1, err := s.Campaign(ctx, "a", time.Second)
	if err != nil || e1 == 0 {
		t.Fatalf("first campaign: %d %v", e1, err)
	}
	if e, _ := s.Campaign(ctx, "b", time.Second); e != 0 {
		t.Fatalf("b took a held lease: epoch %d", e)
	}
	rec := &record.Call{CallID: "c1", Phase: record.PhaseFlow, Owner: "a", Epoch: e1}
	if err := s.Save(ctx, rec); err != nil {
		t.Fatalf("holder's save: %v", err)
	}
	for _, tc := range []struct {
		name  string
		owner string
		epoch int64
	}{{"another owner", "b", e1}, {"an old epoch", "a", e1 - 1}, {"a future epoch", "a", e1 + 1}} {
		bad := &record.Call{CallID: "c1", Phase: record.PhaseDialing, Owner: tc.owner, Epoch: tc.epoch}
		if err := s.Save(ctx, bad); !errors.Is(err, record.ErrFenced) {
			t.Errorf("save by %s: %v, want record.ErrFenced", tc.name, err)
		}
		if err := s.Delete(ctx, "c1", record.Fence{Owner: tc.owner, Epoch: tc.epoch}); !errors.Is(err, record.ErrFenced) {
			t.Errorf("delete by %s: %v, want record.ErrFenced", tc.name, err)
		}
	}
	got, err := s.Load(ctx, "c1")
	if err != nil || got.Phase != record.PhaseFlow {
		t.Fatalf("record after refused writes: %+v %v", got, err)
	}
	if h, _ := s.Holder(ctx); h != "a" {
		t.Errorf("holder %q", h)
	}
	if err := s.Resign(ctx, "a", e1); err != nil {
		t.Fatal(err)
	}
	e2, _ := s.Campaign(ctx, "b", time.Second)
	if e2 <= e1 {
		t.Fatalf("b's epoch %d after a's %d", e2, e1)
	}
	if err := s.Save(ctx, rec); !errors.Is(err, record.ErrFenced) {
		t.Errorf("a wrote after resigning: %v", err)
	}
	ids, _ := s.Active(ctx)
	if len(ids) != 1 || ids[0] != "c1" {
		t.Errorf("active %v", ids)
	}
}

// An expired lease goes to the next campaigner at once; a lease lost with
// Redis's data (flushed) is left to its holder for one lifetime.
func TestRedisStoreLeaseAfterExpiryAndFlush(t *testing.T) {
	ctx := context.Background()
	s, mr := newRedisStoreTest(t)
	_, _ = s.Campaign(ctx, "a", time.Second) // the grace of an empty Redis
	mr.FastForward(2 * time.Second)
	e1, _ := s.Campaign(ctx, "a", time.Second)
	mr.FastForward(2 * time.Second) // a died: its lease lapsed
	if e, _ := s.Campaign(ctx, "b", time.Second); e <= e1 {
		t.Fatalf("standby after expiry: epoch %d, want > %d", e, e1)
	}

	mr.FlushAll() // Redis lost everything; b is alive
	if e, _ := s.Campaign(ctx, "c", time.Second); e != 0 {
		t.Fatalf("a standby took the lease right after a flush: epoch %d", e)
	}
	eb, err := s.Renew(ctx, "b", time.Second)
	if err != nil || eb == 0 {
		t.Fatalf("the holder could not take its lease back: %d %v", eb, err)
	}
	if e, _ := s.Campaign(ctx, "c", time.Second); e != 0 {
		t.Fatalf("standby took the lease from its holder: %d", e)
	}

	mr.FlushAll() // and this time the holder is gone too
	if e, _ := s.Campaign(ctx, "c", time.Second); e != 0 {
		t.Fatal("no grace after the second flush")
	}
	mr.FastForward(2 * time.Second) // the grace runs out
	if e, _ := s.Campaign(ctx, "c", time.Second); e == 0 {
		t.Fatal("standby never took a lease nobody claimed back")
	}
}

// LoadMany reads records in batches: each id its own record, nil for one
// that has none, an error for one that cannot be decoded.
func TestRedisStoreLoadMany(t *testing.T) {
	ctx := context.Background()
	s, mr := newRedisStoreTest(t)
	if _, err := s.Campaign(ctx, "a", time.Second); err != nil { // an empty Redis: the grace begins
		t.Fatal(err)
	}
	mr.FastForward(2 * time.Second)
	epoch, err := s.Campaign(ctx, "a", time.Hour)
	if err != nil || epoch == 0 {
		t.Fatalf("campaign: %d %v", epoch, err)
	}
	var ids []string
	for i := range loadBatch + 3 { // more than one batch
		id := "c" + strconv.Itoa(i)
		ids = append(ids, id)
		if i%10 == 5 {
			continue // no record
		}
		if err := s.Save(ctx, &record.Call{CallID: id, Phase: record.PhaseFlow, Owner: "a", Epoch: epoch}); err != nil {
			t.Fatal(err)
		}
	}
	if err := mr.Set(s.key("c7"), "{not json"); err != nil {
		t.Fatal(err)
	}
	recs, bad, err := s.LoadMany(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		switch {
		case i%10 == 5:
			if recs[i] != nil || bad[i] != nil {
				t.Errorf("%s has no record: got %v, %v", id, recs[i], bad[i])
			}
		case id == "c7":
			if bad[i] == nil {
				t.Errorf("%s: an undecodable record read without error", id)
			}
		case bad[i] != nil || recs[i] == nil || recs[i].CallID != id:
			t.Errorf("%s: got %+v, %v", id, recs[i], bad[i])
		}
	}
}

// A part runs inside the write, after the fence check, over its own KEYS
// and ARGV; its refusal leaves the record unwritten, and a fenced writer
// does not run it.
func TestRedisSaveAlong(t *testing.T) {
	ctx := context.Background()
	s, mr := newRedisStoreTest(t)
	mr.FastForward(2 * time.Second)
	if e, _ := s.Campaign(ctx, "a", time.Second); e != 0 {
		t.Fatalf("campaign in the grace: %d", e)
	}
	mr.FastForward(2 * time.Second)
	e, err := s.Campaign(ctx, "a", time.Second)
	if err != nil || e == 0 {
		t.Fatalf("campaign: %d %v", e, err)
	}
	// Counts under KEYS[1] and refuses past ARGV[1].
	part := Part{Lua: `
local n = redis.call('INCR', KEYS[1])
if n > tonumber(ARGV[1]) then return 7 end
return 0`, Keys: []string{"counter"}, Args: []any{1}}
	rec := &record.Call{CallID: "c1", Phase: record.PhaseDialing, Owner: "a", Epoch: e}
	if _, err := s.SaveAlong(ctx, rec, part); err != nil {
		t.Fatalf("admitted save: %v", err)
	}
	if got, err := s.Load(ctx, "c1"); err != nil || got.Phase != record.PhaseDialing {
		t.Fatalf("after the admitted save: %+v %v", got, err)
	}
	rec2 := &record.Call{CallID: "c2", Phase: record.PhaseDialing, Owner: "a", Epoch: e}
	var r *PartRefused
	if _, err := s.SaveAlong(ctx, rec2, part); !errors.As(err, &r) || r.Code != 7 || !errors.Is(err, ErrPartRefused) {
		t.Fatalf("refused save: %v, want a *PartRefused of 7", err)
	}
	if _, err := s.Load(ctx, "c2"); !errors.Is(err, record.ErrNoRecord) {
		t.Fatalf("a refused save wrote the record: %v", err)
	}
	fenced := &record.Call{CallID: "c3", Phase: record.PhaseDialing, Owner: "b", Epoch: e}
	if _, err := s.SaveAlong(ctx, fenced, part); !errors.Is(err, record.ErrFenced) {
		t.Fatalf("fenced save: %v, want record.ErrFenced", err)
	}
	if n, _ := mr.Get("counter"); n != "2" {
		t.Fatalf("counter %s, want 2: the fenced writer's part must not run", n)
	}
	if _, err := s.SaveAlong(ctx, rec, Part{}); err != nil {
		t.Fatalf("a save with an empty part: %v", err)
	}
}

// The same write made again after its answer was lost is not counted
// again.
func TestRedisSaveAlongAgain(t *testing.T) {
	ctx := context.Background()
	s, mr, e := leasedStoreTest(t, "a")
	part := Part{Lua: `redis.call('INCR', KEYS[1]) return 0`, Keys: []string{"counter"}}
	rec := &record.Call{CallID: "c1", Phase: record.PhaseDialing, Owner: "a", Epoch: e, Updated: time.Unix(1_700_000_000, 0)}
	for i := 0; i < 2; i++ {
		if _, err := s.SaveAlong(ctx, rec, part); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := mr.Get("counter"); n != "1" {
		t.Fatalf("counter %s after the same write twice, want 1", n)
	}
	rec.Transfers++
	if _, err := s.SaveAlong(ctx, rec, part); err != nil {
		t.Fatal(err)
	}
	if n, _ := mr.Get("counter"); n != "2" {
		t.Fatalf("counter %s after another write, want 2", n)
	}
}

// A part answering {n} has the write's Else written instead (the chained
// leg left out), and says so; made again after a lost answer, it finds
// Else written and counts nothing; without an Else, {n} refuses.
func TestRedisSaveAlongElse(t *testing.T) {
	ctx := context.Background()
	s, mr, e := leasedStoreTest(t, "a")
	part := Part{Lua: `redis.call('INCR', KEYS[1]) return {5}`, Keys: []string{"counter"}}
	rec := &record.Call{CallID: "c1", Phase: record.PhasePBX, Owner: "a", Epoch: e, Transfers: 2}
	part.Else = &record.Call{CallID: "c1", Phase: record.PhasePBX, Owner: "a", Epoch: e, Transfers: 1}
	for i, want := range []Wrote{{Else: true, Code: 5}, {Else: true}} {
		w, err := s.SaveAlong(ctx, rec, part)
		if err != nil || w != want {
			t.Fatalf("write %d: %+v %v, want %+v", i+1, w, err, want)
		}
		if got, err := s.Load(ctx, "c1"); err != nil || got.Transfers != 1 {
			t.Fatalf("write %d: record %+v %v, want the else (1 transfer)", i+1, got, err)
		}
	}
	if n, _ := mr.Get("counter"); n != "1" {
		t.Fatalf("counter %s, want 1: the write made again must not count", n)
	}
	part.Else = nil
	rec.CallID = "c2"
	var r *PartRefused
	if _, err := s.SaveAlong(ctx, rec, part); !errors.As(err, &r) || r.Code != 5 {
		t.Fatalf("{5} without an else: %v, want a *PartRefused of 5", err)
	}
	if _, err := s.Load(ctx, "c2"); !errors.Is(err, record.ErrNoRecord) {
		t.Fatalf("a refused save wrote the record: %v", err)
	}
}

// leasedStoreTest is a store on a miniredis whose lease owner holds, past
// the grace a store new to Redis leaves, and its epoch.
func leasedStoreTest(t *testing.T, owner string) (*Redis, *miniredis.Miniredis, int64) {
	t.Helper()
	ctx := context.Background()
	s, mr := newRedisStoreTest(t)
	mr.FastForward(2 * time.Second)
	_, _ = s.Campaign(ctx, owner, time.Second)
	mr.FastForward(2 * time.Second)
	e, err := s.Campaign(ctx, owner, time.Second)
	if err != nil || e == 0 {
		t.Fatalf("campaign: %d %v", e, err)
	}
	return s, mr, e
}
