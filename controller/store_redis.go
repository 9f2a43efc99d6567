package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps one key per call (a JSON record with a TTL, so that a
// crashed process leaves nothing forever) and a set of active call IDs.
// Each Save is one round trip.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewRedisStore returns a store; prefix namespaces the keys ("ariflow").
func NewRedisStore(rdb redis.UniversalClient, prefix string, ttl time.Duration) *RedisStore {
	if ttl <= 0 {
		ttl = 4 * time.Hour
	}
	return &RedisStore{rdb: rdb, prefix: prefix, ttl: ttl}
}

func (s *RedisStore) key(id string) string { return s.prefix + ":call:" + id }
func (s *RedisStore) setKey() string       { return s.prefix + ":calls" }

// Save writes the record and indexes it, in one pipeline.
func (s *RedisStore) Save(ctx context.Context, rec *CallRecord) error {
	b, err := EncodeRecord(rec)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.key(rec.CallID), b, s.ttl)
		p.SAdd(ctx, s.setKey(), rec.CallID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("save call %s: %w", rec.CallID, err)
	}
	return nil
}

func (s *RedisStore) Load(ctx context.Context, callID string) (*CallRecord, error) {
	b, err := s.rdb.Get(ctx, s.key(callID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNoRecord
	}
	if err != nil {
		return nil, fmt.Errorf("load call %s: %w", callID, err)
	}
	return DecodeRecord(b)
}

func (s *RedisStore) Delete(ctx context.Context, callID string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.key(callID))
		p.SRem(ctx, s.setKey(), callID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete call %s: %w", callID, err)
	}
	return nil
}

func (s *RedisStore) Active(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.setKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("list active calls: %w", err)
	}
	return ids, nil
}
