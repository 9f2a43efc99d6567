package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps one key per call: a JSON record with a TTL, so that a
// crashed process leaves nothing forever. Save and Delete are one command
// each; listing the active calls (only after a reconnect) scans the keys.
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

// Save writes the record.
func (s *RedisStore) Save(ctx context.Context, rec *CallRecord) error {
	b, err := EncodeRecord(rec)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.key(rec.CallID), b, s.ttl).Err(); err != nil {
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
	if err := s.rdb.Del(ctx, s.key(callID)).Err(); err != nil {
		return fmt.Errorf("delete call %s: %w", callID, err)
	}
	return nil
}

// Active lists the call IDs that have a record.
func (s *RedisStore) Active(ctx context.Context) ([]string, error) {
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
